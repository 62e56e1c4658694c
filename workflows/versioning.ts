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
 *
 * The behaviour is declared only to a versioned worker (one with a deployment name; an unversioned
 * worker's task has a build id alone):
 * the SDK sends it with every completion, and Temporal refuses a completion that carries one from
 * an unversioned worker, as the tests' in-process workers are.
 */
import { setWorkflowOptions, workflowInfo } from '@temporalio/workflow';

export type VersioningBehaviour = 'PINNED' | 'AUTO_UPGRADE';
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any workflow signature
type Workflow = (...args: any[]) => Promise<unknown>;

const declared = new WeakMap<Workflow, VersioningBehaviour>();

function declare(workflow: Workflow, behaviour: VersioningBehaviour): void {
  declared.set(workflow, behaviour);
  // Read once per execution, as it starts on a worker.
  setWorkflowOptions(
    () => (workflowInfo().currentDeploymentVersion?.deploymentName ? { versioningBehavior: behaviour } : {}),
    workflow,
  );
}

export function pinned(workflow: Workflow): void {
  declare(workflow, 'PINNED');
}

export function autoUpgrade(workflow: Workflow): void {
  declare(workflow, 'AUTO_UPGRADE');
}

/** What a workflow declared (undefined: nothing, so the worker's default). */
export function versioningBehaviourOf(workflow: Workflow): VersioningBehaviour | undefined {
  return declared.get(workflow);
}
