/**
 * Global setup for integration tests: starts the repo's local Neo4j and Temporal, or reuses
 * them when they already run (CI starts them first), and migrates the graph schema once.
 * Whatever this setup started, its teardown stops again. It names the Worker Deployment this
 * run's worker processes join (test/support/processes.ts), and removes those that runs finished
 * long ago left behind: Temporal keeps at most 100 deployments in a namespace. It bundles the
 * workflow code once, as the image does (PERSONA_TEST_WORKFLOW_BUNDLE_DIR): the harness's workers
 * and the worker processes load that bundle instead of each bundling the source as it starts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { loadConfig, loadSettings, type Settings } from '../../config/env';
import { createDriver } from '../../graph/driver';
import { migrate } from '../../graph/schema';
import { stackDown, stackUp } from '../../stack/services';
import { buildWorkflowBundles } from '../../workers/bundle';

const log = (line: string): void => console.log(`[stack] ${line}`);

export default async function setup(): Promise<() => Promise<void>> {
  const settings = loadSettings();
  const { started } = await stackUp(settings, log);
  const config = loadConfig();
  process.env.PERSONA_TEST_DEPLOYMENT_NAME ??= `${TEST_DEPLOYMENT_PREFIX}${Date.now().toString(36)}`;
  await removeOldTestDeployments(settings);
  const driver = createDriver(config);
  try {
    const result = await migrate(driver, config.NEO4J_DATABASE, {
      reportingCurrency: config.PERSONA_REPORTING_CURRENCY,
    });
    log(`schema: ${result.created.length} created, ${result.existing.length} already there (${result.ms} ms)`);
  } finally {
    await driver.close();
  }
  const bundles = mkdtempSync(path.join(tmpdir(), 'persona-test-bundles-'));
  await buildWorkflowBundles(bundles);
  process.env.PERSONA_TEST_WORKFLOW_BUNDLE_DIR = bundles;
  log('workflow bundles built once, for every test worker');
  return async () => {
    rmSync(bundles, { recursive: true, force: true });
    if (started.length > 0) await stackDown(settings, log, started);
  };
}

/** Every test run's deployment name starts so (test/support/processes.ts). */
const TEST_DEPLOYMENT_PREFIX = 'persona-test-';
/** Older than any run: a deployment this old has no worker left. */
const STALE_MS = 3 * 3_600_000;

/**
 * Removes test deployments created more than STALE_MS ago: unversioned routing first (a current
 * version cannot be deleted), then every version (drained or not: test workflows left open die
 * with it), then the deployment. Best effort: what Temporal refuses stays for the next run.
 */
async function removeOldTestDeployments(settings: Settings): Promise<void> {
  const connection = await Connection.connect({ address: settings.TEMPORAL_ADDRESS });
  const service = connection.workflowService;
  const namespace = settings.TEMPORAL_NAMESPACE;
  let removed = 0;
  try {
    const stale: string[] = [];
    let nextPageToken: Uint8Array | undefined;
    do {
      const page = await service.listWorkerDeployments({ namespace, pageSize: 100, nextPageToken });
      for (const d of page.workerDeployments ?? []) {
        const created = Number(d.createTime?.seconds ?? 0) * 1000;
        if (d.name?.startsWith(TEST_DEPLOYMENT_PREFIX) && Date.now() - created > STALE_MS) stale.push(d.name);
      }
      nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
    } while (nextPageToken);
    for (const deploymentName of stale) {
      try {
        const { workerDeploymentInfo } = await service.describeWorkerDeployment({ namespace, deploymentName });
        if (workerDeploymentInfo?.routingConfig?.currentDeploymentVersion?.buildId)
          await service.setWorkerDeploymentCurrentVersion({ namespace, deploymentName, buildId: '' });
        if (workerDeploymentInfo?.routingConfig?.rampingDeploymentVersion?.buildId)
          await service.setWorkerDeploymentRampingVersion({ namespace, deploymentName, buildId: '', percentage: 0 });
        for (const v of workerDeploymentInfo?.versionSummaries ?? [])
          await service.deleteWorkerDeploymentVersion({
            namespace,
            deploymentVersion: v.deploymentVersion,
            skipDrainage: true,
          });
        await service.deleteWorkerDeployment({ namespace, deploymentName });
        removed++;
      } catch (err) {
        log(`test deployment ${deploymentName} stays for now: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  } finally {
    await connection.close();
  }
  if (removed > 0) log(`removed ${removed} test deployment(s) of earlier runs`);
}
