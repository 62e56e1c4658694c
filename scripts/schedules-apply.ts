/**
 * Creates or updates Persona's Temporal Schedules (the worker does the same at start-up):
 *   npm run schedules:apply
 * Prints what it did and when each (the card-expiry scan, the interaction-id prune) fires next.
 */
import { ConfigError, loadConfig } from '../config/env';
import { connectTemporal } from '../temporal/connection';
import { PersonaPayloadCodec } from '../temporal/payloadCodec';
import { applySchedules } from '../temporal/schedules';

async function main(): Promise<void> {
  const settings = loadConfig();
  // The schedules' workflow inputs are encrypted like every payload; they start only workflows that
  // belong to no one customer, so the service key (no graph) is enough.
  const { connection, client } = await connectTemporal(settings, {
    payloadCodec: new PersonaPayloadCodec(settings.payloadKeys, null),
  });
  try {
    for (const applied of await applySchedules(client, settings)) {
      const description = await client.schedule.getHandle(applied.scheduleId).describe();
      const next = description.info.nextActionTimes[0]?.toISOString() ?? 'never (paused?)';
      console.log(
        `${applied.scheduleId}: ${applied.outcome}; ` +
          `${description.state.paused ? 'paused' : 'active'}; next run ${next}`,
      );
    }
  } finally {
    await connection.close();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? err.message : err instanceof Error ? err.message : err);
  process.exit(1);
});
