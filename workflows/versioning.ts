/**
 * Which Worker Deployment version runs a workflow's tasks (docs/workflows.md, "Versioning"). Each
 * workflow says it with one line beside its export:
 *   pinned       stays on the version it started on until it closes (its continue-as-new runs
 *                too); a deploy never changes its code under it, and the old version's workers run
 *                until it is drained. For workflows that end within a deploy cycle.
 *   autoUpgrade  moves to the current version at its next workflow task: every change to its code
 *                must replay the histories already running (`patched()`; the replay test of
 *                workflows/__histories__ checks it). For workflows that outlive a deploy.
 * A workflow that says neither is pinned (the worker's default, workers/main.ts).
 */
import { setWorkflowOptions } from '@temporalio/workflow';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any workflow signature
type Workflow = (...args: any[]) => Promise<unknown>;

export function pinned(workflow: Workflow): void {
  setWorkflowOptions({ versioningBehavior: 'PINNED' }, workflow);
}

export function autoUpgrade(workflow: Workflow): void {
  setWorkflowOptions({ versioningBehavior: 'AUTO_UPGRADE' }, workflow);
}
