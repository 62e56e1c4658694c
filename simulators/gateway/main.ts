/**
 * Runs the payment-gateway simulator on PERSONA_GATEWAY_HOST:PERSONA_GATEWAY_PORT, keeping its
 * records in the stack folder.
 */
import path from 'node:path';
import { serve } from '@hono/node-server';
import { loadSettings } from '../../config/env';
import { createGatewaySimulator } from './app';

const settings = loadSettings();
const dataFile = path.join(settings.PERSONA_STACK_DIR, 'gateway', 'charges.jsonl');
const host = settings.PERSONA_GATEWAY_HOST;
const server = serve(
  { fetch: createGatewaySimulator(dataFile).fetch, hostname: host, port: settings.PERSONA_GATEWAY_PORT },
  (info) => console.log(`gateway simulator on http://${host}:${info.port} (records in ${dataFile})`),
);
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => server.close(() => process.exit(0)));
