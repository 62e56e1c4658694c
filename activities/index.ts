/**
 * Activities are built by factories closing over the process's dependencies (graph handle,
 * agent clients), so workflows can `import type` them and tests can swap any dependency. The
 * worker registers what `createActivities` returns.
 */
import type { ChimeraClient } from '../clients/chimera';
import type { Graph } from '../graph/graph';
import { createAgentActivities } from './agents';
import { createGraphActivities } from './graph';

export interface ActivityDeps {
  graph: Graph;
  chimera: ChimeraClient;
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...createGraphActivities(deps),
    ...createAgentActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
