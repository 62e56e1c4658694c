/** The interaction-claims prune's contract: ids, input, result, the activity's request. */

export const INTERACTION_PRUNE_WORKFLOW_TYPE = 'interactionClaimsPruneWorkflow';

/** The daily Schedule; the runs it starts are `persona-interaction-prune-<scheduled time>`. */
export const INTERACTION_PRUNE_SCHEDULE_ID = 'persona-interaction-prune';

export interface InteractionPruneInput {
  /** Claims older than this many hours before the run was due are deleted (PERSONA_INTERACTION_ID_WINDOW_HOURS). */
  window_hours: number;
  /** Claims deleted per write transaction (PERSONA_INTERACTION_PRUNE_BATCH_SIZE). */
  batch_size: number;
}

export interface InteractionPruneResult {
  /** Claims deleted by this run (at least: a worker that died may have deleted a few more it never reported). */
  deleted: number;
  /** RFC 3339: claims recorded before it were deleted. */
  cutoff: string;
}

export interface PruneClaimsRequest {
  /** RFC 3339. */
  cutoff: string;
  batch_size: number;
}

/** What the activity heartbeats after each batch: on a retry it goes on counting from there. */
export interface PruneClaimsProgress {
  deleted: number;
}

/** The failure type of a run whose activity failed for good. */
export const INTERACTION_PRUNE_FAILED = 'InteractionPruneFailed';
