/**
 * Replays every recorded history in workflows/__histories__/ against today's workflow code: a
 * change that alters a workflow's commands for a recorded path fails here (and so fails CI), and
 * so does a workflow type with no recorded history.
 * Record new ones beside them with `npm run histories:record -- --as <label>`.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { ENCRYPTED_ENCODING } from '../../temporal/payloadEnvelope';
import {
  HISTORIES_DIR,
  NO_OPEN_PROCESS_SINKS,
  PERSONA_WORKFLOWS,
  RECORDING_CODEC,
  recordedHistories,
} from '../support/temporal';

const PERSONA_WORKFLOWS_DIR = path.dirname(HISTORIES_DIR);
import { buildWorkflowBundles, workflowBundlePath } from '../../workers/bundle';
import { WORKFLOW_INTERCEPTORS } from '../../workers/logging';

const files = readdirSync(HISTORIES_DIR).filter((f) => f.endsWith('.json'));

describe('recorded workflow histories', () => {
  it('cover every workflow type the worker registers (workflows/index.ts)', () => {
    const types = files
      .map(
        (f) =>
          JSON.parse(readFileSync(path.join(HISTORIES_DIR, f), 'utf8')) as {
            events: { workflowExecutionStartedEventAttributes?: { workflowType: { name: string } } }[];
          },
      )
      .map((h) => h.events[0]?.workflowExecutionStartedEventAttributes?.workflowType.name);
    const registered = [
      ...readFileSync(path.join(PERSONA_WORKFLOWS_DIR, 'index.ts'), 'utf8').matchAll(/^export \{ (\w+) \} from/gm),
    ].map((m) => m[1]);
    expect(registered.length).toBeGreaterThan(10);
    const missing = registered.filter((t) => !types.includes(t));
    expect(missing, 'workflow types without a recorded history: npm run histories:record').toEqual([]);
  });

  it('show ops a summary in words beside every activity and timer', async () => {
    const missing: string[] = [];
    for (const f of files) {
      const history = proto.temporal.api.history.v1.History.fromObject(
        JSON.parse(readFileSync(path.join(HISTORIES_DIR, f), 'utf8')) as object,
      );
      for (const e of history.events) {
        const what =
          e.activityTaskScheduledEventAttributes?.activityType?.name ??
          (e.timerStartedEventAttributes ? 'timer' : null);
        if (!what) continue;
        const payload = e.userMetadata?.summary;
        const [plain] = payload ? await RECORDING_CODEC.decode([payload]) : [];
        const summary = plain?.data ? (JSON.parse(Buffer.from(plain.data).toString('utf8')) as string) : '';
        // Words, not an id alone: a sentence with a verb and at least a few words.
        if (summary.split(/\s+/).length < 4)
          missing.push(`${f} event ${String(e.eventId)} (${what}): ${JSON.stringify(summary)}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('hold only payloads the codec wrote (a worker refuses any other)', () => {
    const plain: string[] = [];
    const visit = (value: unknown, where: string): void => {
      if (Array.isArray(value)) value.forEach((v, i) => visit(v, `${where}[${i}]`));
      else if (value && typeof value === 'object') {
        const o = value as Record<string, unknown>;
        const encoding = (o.metadata as Record<string, string> | undefined)?.encoding;
        // A local activity's marker data is the SDK core's own, never handed to a codec.
        const coreOwn = /markerRecordedEventAttributes\.details\.data\./.test(where);
        if (
          'data' in o &&
          encoding !== undefined &&
          !coreOwn &&
          Buffer.from(encoding, 'base64').toString() !== ENCRYPTED_ENCODING
        )
          plain.push(where);
        for (const [k, v] of Object.entries(o))
          if (k !== 'header' && k !== 'searchAttributes') visit(v, `${where}.${k}`);
      }
    };
    for (const f of files) visit(JSON.parse(readFileSync(path.join(HISTORIES_DIR, f), 'utf8')), f);
    expect(plain).toEqual([]);
  });

  it('replay deterministically against the current code', async () => {
    const histories = recordedHistories().map(({ workflowId, history }) => ({ workflowId, history }));
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories(
      {
        workflowsPath: PERSONA_WORKFLOWS,
        interceptors: { workflowModules: [WORKFLOW_INTERCEPTORS] },
        // Histories recorded through the codec are decrypted; those from before it are read as they are.
        dataConverter: { payloadCodecs: [RECORDING_CODEC] },
        sinks: NO_OPEN_PROCESS_SINKS,
      },
      histories,
    )) {
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    expect(failures).toEqual([]);
    expect(histories.length).toBe(files.length);
  });

  it('replay against the prebuilt bundles too (what `npm run build:workflows` writes for the image)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'persona-bundle-'));
    const built = await buildWorkflowBundles(dir);
    expect(built.map((b) => path.basename(b.path))).toEqual(['workflows.js', 'workflows-traced.js']);
    const histories = recordedHistories().map(({ workflowId, history }) => ({ workflowId, history }));
    for (const traced of [false, true]) {
      const failures: string[] = [];
      for await (const result of Worker.runReplayHistories(
        {
          workflowBundle: { codePath: workflowBundlePath(dir, traced) },
          dataConverter: { payloadCodecs: [RECORDING_CODEC] },
          sinks: NO_OPEN_PROCESS_SINKS,
        },
        histories,
      ))
        if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
      expect(failures, traced ? 'traced bundle' : 'bundle').toEqual([]);
    }
  }, 120_000);
});
