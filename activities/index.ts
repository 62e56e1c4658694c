/**
 * Activities are built by factories closing over the process's dependencies (graph handle,
 * gateway and notification clients), so workflows can `import type` them and tests can swap
 * any dependency. The worker registers what `createActivities` returns.
 */
import type { Graph } from '../graph/graph';

export interface ActivityDeps {
  graph: Graph;
}

export function createActivities(_deps: ActivityDeps): Record<string, (...args: never[]) => Promise<unknown>> {
  return {};
}
