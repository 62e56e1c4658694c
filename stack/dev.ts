/**
 * `npm run dev`: brings up the whole system in one command — the local stack (Neo4j, Temporal
 * and its UI, Kafka, the gateway simulator), the graph's migration step (as `npm run migrate`
 * does), then the worker and the api (Kafka on), their logs
 * interleaved with a prefix. As a deploy would, it makes the worker's deployment version current
 * once the worker polls (a versioned worker gets no task before: docs/deployment.md). Ctrl-C stops
 * the worker and api; the stack keeps running (`npm run stack:down` stops it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { API_NODE_ARGS, loadConfig, loadSettings, repoRoot, workerDeploymentVersion } from '../config/env';
import { createDriver, migrate } from '../graph';
import { connectTemporal } from '../temporal/connection';
import { promote } from '../temporal/workerDeployment';
import { localKafkaSecureEnv } from './install';
import { stackUp } from './services';
import { polledTaskQueues } from '../temporal/taskQueues';

const log = (line: string): void => console.log(`[dev] ${line}`);

function start(name: string, entry: string, nodeArgs: string[] = []): ChildProcess {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', entry], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => console.log(`[${name}] ${line}`));
  }
  return child;
}

async function main(): Promise<void> {
  const settings = loadSettings();
  await stackUp(settings, (line) => console.log(`[stack] ${line}`));
  // The stack's Kafka nodes on their secure listeners (TLS against the stack's CA, SASL), unless
  // KAFKA_BROKERS says otherwise (set it to "" to run without Kafka).
  if (process.env.KAFKA_BROKERS === undefined)
    for (const [name, value] of Object.entries(localKafkaSecureEnv(settings))) process.env[name] ??= value;
  // The log is the local inbox: show the codes a message carries (an identity merge's consent code).
  process.env.PERSONA_LOG_NOTIFICATION_CODES ??= 'true';
  const config = loadConfig();
  // The deploy's migration step, before the processes that refuse an unmigrated graph.
  const driver = createDriver(config);
  try {
    const schema = await migrate(driver, config.NEO4J_DATABASE, {
      reportingCurrency: config.PERSONA_REPORTING_CURRENCY,
    });
    log(`graph schema version ${schema.version} (${schema.created.length} rules created, ${schema.ms} ms)`);
  } finally {
    await driver.close();
  }
  const children = [start('worker', 'workers/main.ts'), start('api', 'api/main.ts', API_NODE_ARGS)];
  log(`api        http://127.0.0.1:${config.PERSONA_HTTP_PORT} (health: /healthz, /readyz; metrics: /metrics)`);
  log(
    `worker     http://127.0.0.1:${config.PERSONA_WORKER_HTTP_PORT} (/readyz, /metrics), ` +
      `task queues ${polledTaskQueues(config).join(', ')}`,
  );
  log(`console    http://localhost:${config.PERSONA_HTTP_PORT}/console`);
  // The UI reads decoded payloads for a browser signed in to the console as ops, from the codec's
  // CORS origin (localhost, the console's site): api/rest/codec.ts.
  log(
    `Temporal UI ${config.TEMPORAL_UI_URL}` +
      (config.PERSONA_CODEC_CORS_ORIGIN
        ? ` (decoded for a console ops session at ${config.PERSONA_CODEC_CORS_ORIGIN}, ` +
          'with "include cross-origin credentials" in its codec settings)'
        : ''),
  );
  log('Ctrl-C stops the worker and api; `npm run stack:down` stops Neo4j and Temporal.');

  let exiting = false;
  const stopAll = (code: number): void => {
    if (exiting) return;
    exiting = true;
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
    void Promise.all(
      children.map((c) => (c.exitCode !== null ? Promise.resolve() : new Promise((r) => c.once('exit', r)))),
    ).then(() => process.exit(code));
  };
  for (const child of children) {
    child.once('exit', (code) => {
      if (!exiting) {
        log(`a process exited with ${code}; stopping the others`);
        stopAll(code ?? 1);
      }
    });
  }
  process.once('SIGINT', () => stopAll(0));
  process.once('SIGTERM', () => stopAll(0));

  // The worker bundles the workflow code as it starts: promote waits until it has polled.
  const version = workerDeploymentVersion(config);
  const { connection } = await connectTemporal(config);
  try {
    const { previous } = await promote(
      connection.workflowService,
      { namespace: config.TEMPORAL_NAMESPACE, deploymentName: version.deploymentName, identity: 'npm run dev' },
      version.buildId,
      { taskQueues: polledTaskQueues(config), timeoutMs: 300_000 },
    );
    log(
      `worker version ${version.deploymentName}.${version.buildId} is current` +
        (previous && previous !== version.buildId ? ` (was ${previous}; its pinned workflows stay on it)` : ''),
    );
  } catch (err) {
    log(`could not make the worker's version current: ${err instanceof Error ? err.message : String(err)}`);
    stopAll(1);
  } finally {
    await connection.close();
  }
}

main().catch((err: unknown) => {
  console.error(`[dev] failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
