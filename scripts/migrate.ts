/**
 * The migration step of a deploy: applies the graph's schema (constraints, indexes, data
 * migrations) and records its version, once, before the new api and worker start — they only
 * check it (graph/schema.ts `checkSchema`) and refuse an older graph.
 *
 *   npm run migrate
 *
 * A Kubernetes Job or a one-shot compose service (`migrate` in docker-compose.yml) in production;
 * `npm run dev` and the test suite's set-up run it for you. Safe to run again, or from two places
 * at once (the data migrations are claimed one at a time). Exits non-zero when it fails.
 */
import { loadConfig } from '../config/env';
import { createDriver, migrate, SCHEMA_VERSION } from '../graph';

async function main(): Promise<void> {
  const config = loadConfig();
  const driver = createDriver(config);
  try {
    await driver.verifyConnectivity({ database: config.NEO4J_DATABASE });
    console.log(`migrate: graph at ${config.NEO4J_URI} (database ${config.NEO4J_DATABASE}), schema ${SCHEMA_VERSION}`);
    const r = await migrate(driver, config.NEO4J_DATABASE, { reportingCurrency: config.PERSONA_REPORTING_CURRENCY });
    console.log(
      `migrate: schema version ${r.version} in ${r.ms} ms — ${r.created.length} rules created` +
        `${r.created.length ? ` (${r.created.join(', ')})` : ''}, ${r.existing.length} already there, ` +
        `${r.dropped.length} dropped, data migrations applied: ${r.migrated.length ? r.migrated.join(', ') : 'none'}`,
    );
  } finally {
    await driver.close();
  }
}

main().catch((err: unknown) => {
  console.error(`migrate: failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
