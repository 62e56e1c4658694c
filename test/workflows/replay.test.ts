/**
 * Replays every recorded history in workflows/__histories__/ against today's workflow code: a
 * change that alters a workflow's commands for a recorded path fails here (and so fails CI).
 * Record fresh histories with `npm run histories:record`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { HISTORIES_DIR } from '../../scripts/record-histories';
import { PERSONA_WORKFLOWS } from '../support/temporal';

const files = readdirSync(HISTORIES_DIR).filter((f) => f.endsWith('.json'));

describe('recorded workflow histories', () => {
  it('cover every workflow', () => {
    const types = files.map((f) => JSON.parse(readFileSync(path.join(HISTORIES_DIR, f), 'utf8')) as { events: { workflowExecutionStartedEventAttributes?: { workflowType: { name: string } } }[] })
      .map((h) => h.events[0]?.workflowExecutionStartedEventAttributes?.workflowType.name);
    expect(new Set(types)).toEqual(
      new Set(['onboardingWorkflow', 'trustedDeviceWorkflow', 'paymentRecoveryWorkflow', 'expiryScanWorkflow', 'fraudOutcomeWorkflow', 'eventRelayWorkflow', 'erasureWorkflow']),
    );
  });

  it('replay deterministically against the current code', async () => {
    const histories = files.map((f) => ({ workflowId: f.replace(/\.json$/, ''), history: proto.temporal.api.history.v1.History.fromObject(JSON.parse(readFileSync(path.join(HISTORIES_DIR, f), 'utf8')) as object) }));
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories({ workflowsPath: PERSONA_WORKFLOWS }, histories)) {
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    expect(failures).toEqual([]);
    expect(histories.length).toBe(files.length);
  });
});
