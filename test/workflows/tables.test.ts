/**
 * Business tables are decided in activities, never in workflow code: an edit of one (a decline
 * turned from soft to hard, as a business person may make it) changes what later declines decide,
 * and must never make a recorded history fail to replay — in production, every running recovery
 * that saw the code would be stuck. Here the decline table is edited in the workflow bundle itself
 * (whatever imports it gets the edited copy), and every recorded history is replayed against it.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { HISTORIES_DIR, PERSONA_WORKFLOWS, RECORDING_CODEC, recordedHistories } from '../support/temporal';
import { WORKFLOW_INTERCEPTORS } from '../../workers/logging';

const DECLINES = fileURLToPath(new URL('../../payments/declines.ts', import.meta.url));

/** The decline table with one entry edited: insufficient_funds is a hard decline that deactivates the card. */
function editedDeclines(): string {
  const source = readFileSync(DECLINES, 'utf8');
  const entry = "insufficient_funds: { class: 'soft', doNotRetry: false }";
  expect(source).toContain(entry);
  const dir = mkdtempSync(path.join(tmpdir(), 'persona-tables-'));
  const file = path.join(dir, 'declines.ts');
  writeFileSync(
    file,
    source.replace(entry, "insufficient_funds: { class: 'hard', status: 'inactive', doNotRetry: true }"),
  );
  return file;
}

/** The workflows at `workflowsPath`, bundled with the edited table in place of the real one. */
async function bundleWithEditedTable(workflowsPath: string, edited: string) {
  const replaced: string[] = [];
  const bundle = await bundleWorkflowCode({
    workflowsPath,
    workflowInterceptorModules: [WORKFLOW_INTERCEPTORS],
    webpackConfigHook: (config) => {
      config.plugins = [
        ...(config.plugins ?? []),
        {
          apply(compiler) {
            // Whatever the workflow code imports the table as, it gets the edited copy.
            new compiler.webpack.NormalModuleReplacementPlugin(/payments[\\/]declines(\.ts)?$/, (resource) => {
              replaced.push(String(resource.request));
              resource.request = edited;
            }).apply(compiler);
          },
        },
      ];
      return config;
    },
  });
  return { bundle, replaced };
}

describe('business tables are decided in activities', () => {
  it('the edit reaches workflow code that imports the table (the check below can fail)', async () => {
    const edited = editedDeclines();
    const fixture = fileURLToPath(new URL('../fixtures/tableInWorkflow.ts', import.meta.url));
    const { bundle, replaced } = await bundleWithEditedTable(fixture, edited);
    expect(replaced).toHaveLength(1);
    expect(bundle.code).toMatch(/insufficient_funds:\s*\{\s*class:\s*["']hard["']/);
  }, 120_000);

  it('an edited decline table replays every recorded history', async () => {
    const edited = editedDeclines();
    const { bundle, replaced } = await bundleWithEditedTable(PERSONA_WORKFLOWS, edited);
    const files = readdirSync(HISTORIES_DIR).filter((f) => f.endsWith('.json'));
    const recoveries = files.filter((f) => f.startsWith('payment-recovery-'));
    // The recorded recoveries include declines of the edited code, charged and reported.
    expect(recoveries.length).toBeGreaterThanOrEqual(4);
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories(
      { workflowBundle: bundle, dataConverter: { payloadCodecs: [RECORDING_CODEC] } },
      recordedHistories().map(({ workflowId, history }) => ({ workflowId, history })),
    ))
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    expect(failures).toEqual([]);
    // Nothing in the workflow code evaluates the table: the bundle never asked for it.
    expect(replaced).toEqual([]);
  }, 120_000);
});
