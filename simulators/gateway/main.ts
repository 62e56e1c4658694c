/**
 * Runs the payment-gateway simulator on PERSONA_GATEWAY_HOST:PERSONA_GATEWAY_PORT, keeping its
 * records in the stack folder. PERSONA_GATEWAY_SIM_KEY_TTL_HOURS (default 24) is how long it
 * remembers an idempotency key.
 */
import path from 'node:path';
import { serve } from '@hono/node-server';
import { z } from 'zod';
import { loadSettings } from '../../config/env';
import { loadRuleTable } from '../../payments/ruleTables';
import { createGatewaySimulator } from './app';

const settings = loadSettings();
const keyTtlHours = z.coerce
  .number()
  .positive()
  .default(24)
  .parse(process.env.PERSONA_GATEWAY_SIM_KEY_TTL_HOURS?.trim() || undefined);
const dataFile = path.join(settings.PERSONA_STACK_DIR, 'gateway', 'charges.jsonl');
const host = settings.PERSONA_GATEWAY_HOST;
const app = createGatewaySimulator(dataFile, loadRuleTable(), { keyTtlMs: keyTtlHours * 60 * 60 * 1000 });
const server = serve({ fetch: app.fetch, hostname: host, port: settings.PERSONA_GATEWAY_PORT }, (info) =>
  console.log(
    `gateway simulator on http://${host}:${info.port} (records in ${dataFile}; idempotency keys kept ${keyTtlHours} h)`,
  ),
);
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => server.close(() => process.exit(0)));
