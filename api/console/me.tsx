/**
 * The customer's own page (/console/me): their profile, wallet, devices, addresses and history.
 */
import { Hono } from 'hono';
import type { ApiDeps } from '../deps';
import type { ConsoleAction } from './kit';

export function meConsole(_deps: ApiDeps): { routes: Hono; actions: ConsoleAction[] } {
  const routes = new Hono();
  return { routes, actions: [] };
}
