/**
 * Global setup for integration tests: starts the repo's local Neo4j and Temporal, or reuses
 * them when they already run (CI starts them first), and migrates the graph schema once.
 * Whatever this setup started, its teardown stops again.
 */
import { loadConfig, loadSettings } from '../../config/env';
import { createDriver } from '../../graph/driver';
import { migrate } from '../../graph/schema';
import { stackDown, stackUp } from '../../stack/services';

const log = (line: string): void => console.log(`[stack] ${line}`);

export default async function setup(): Promise<() => Promise<void>> {
  const settings = loadSettings();
  const { started } = await stackUp(settings, log);
  const config = loadConfig();
  const driver = createDriver(config);
  try {
    const result = await migrate(driver, config.NEO4J_DATABASE, {
      reportingCurrency: config.PERSONA_REPORTING_CURRENCY,
    });
    log(`schema: ${result.created.length} created, ${result.existing.length} already there (${result.ms} ms)`);
  } finally {
    await driver.close();
  }
  return async () => {
    if (started.length > 0) await stackDown(settings, log, started);
  };
}
