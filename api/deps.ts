/** What the api's routes and services run on, built once in api/main.ts (or by a test). */
import type { Client } from '@temporalio/client';
import type { Graph } from '../graph/graph';
import type { ReadinessCheck } from '../runtime/health';
import type { Logger } from '../runtime/logger';
import type { Authenticator } from './auth';

export interface ApiDeps {
  logger: Logger;
  readiness: ReadinessCheck[];
  graph: Graph;
  temporal: { client: Client; taskQueue: string };
  authenticate: Authenticator;
  limits: { maxBodyBytes: number; waitTimeoutMs: number };
}
