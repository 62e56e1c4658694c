/**
 * Replays every recorded history in workflows/__histories__/ against today's workflow code: a
 * change that alters a workflow's commands for a recorded path fails here (and so fails CI).
 * Record new ones beside them with `npm run histories:record -- --as <label>`.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { isEncrypted } from '../../temporal/payloadCodec';
import { HISTORIES_DIR, PERSONA_WORKFLOWS, RECORDING_CODEC } from '../support/temporal';
import { buildWorkflowBundles, workflowBundlePath } from '../../workers/bundle';
import { WORKFLOW_INTERCEPTORS } from '../../workers/logging';

const files = readdirSync(HISTORIES_DIR).filter((f) => f.endsWith('.json'));

describe('recorded workflow histories', () => {
  it('cover every workflow', () => {
    const types = files
      .map(
        (f) =>
          JSON.parse(readFileSync(path.join(HISTORIES_DIR, f), 'utf8')) as {
            events: { workflowExecutionStartedEventAttributes?: { workflowType: { name: string } } }[];
          },
      )
      .map((h) => h.events[0]?.workflowExecutionStartedEventAttributes?.workflowType.name);
    expect(new Set(types)).toEqual(
      new Set([
        'onboardingWorkflow',
        'trustedDeviceWorkflow',
        'paymentRecoveryWorkflow',
        'expiryScanWorkflow',
        'fraudOutcomeWorkflow',
        'eventRelayWorkflow',
        'erasureWorkflow',
        'interactionClaimsPruneWorkflow',
        'identityMergeWorkflow',
      ]),
    );
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

  it('include histories from before the payload codec (plain) and after it (every payload encrypted)', () => {
    const kinds = new Map<string, 'plain' | 'encrypted' | 'mixed'>();
    for (const f of files) {
      const text = readFileSync(path.join(HISTORIES_DIR, f), 'utf8');
      const history = proto.temporal.api.history.v1.History.fromObject(JSON.parse(text) as object);
      const input = history.events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads ?? [];
      const encrypted = input.filter((p) => isEncrypted(p)).length;
      kinds.set(f, encrypted === 0 ? 'plain' : encrypted === input.length ? 'encrypted' : 'mixed');
    }
    const values = [...kinds.values()];
    expect(values).toContain('plain');
    expect(values).toContain('encrypted');
    expect(values).not.toContain('mixed');
  });

  it('replay deterministically against the current code', async () => {
    const histories = files.map((f) => ({
      workflowId: f.replace(/\.json$/, ''),
      history: proto.temporal.api.history.v1.History.fromObject(
        JSON.parse(readFileSync(path.join(HISTORIES_DIR, f), 'utf8')) as object,
      ),
    }));
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories(
      {
        workflowsPath: PERSONA_WORKFLOWS,
        interceptors: { workflowModules: [WORKFLOW_INTERCEPTORS] },
        // Histories recorded through the codec are decrypted; those from before it are read as they are.
        dataConverter: { payloadCodecs: [RECORDING_CODEC] },
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
    const histories = files.map((f) => ({
      workflowId: f.replace(/\.json$/, ''),
      history: proto.temporal.api.history.v1.History.fromObject(
        JSON.parse(readFileSync(path.join(HISTORIES_DIR, f), 'utf8')) as object,
      ),
    }));
    for (const traced of [false, true]) {
      const failures: string[] = [];
      for await (const result of Worker.runReplayHistories(
        {
          workflowBundle: { codePath: workflowBundlePath(dir, traced) },
          dataConverter: { payloadCodecs: [RECORDING_CODEC] },
        },
        histories,
      ))
        if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
      expect(failures, traced ? 'traced bundle' : 'bundle').toEqual([]);
    }
  }, 120_000);
});
