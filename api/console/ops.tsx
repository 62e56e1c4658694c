/**
 * The ops side of the console: find a customer, the customer page, and the actions ops decide.
 */
import { Hono } from 'hono';
import type { ApiDeps } from '../deps';
import type { ConsoleAction } from './kit';

export function opsConsole(_deps: ApiDeps): { routes: Hono; actions: ConsoleAction[] } {
  const routes = new Hono();
  return { routes, actions: [] };
}
