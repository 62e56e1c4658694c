/**
 * The worker: the kinds of work a process runs and each kind's slots (PERSONA_WORKER_*), its
 * workflow bundles, and the Worker Deployment version it polls as.
 */
import { z } from 'zod';
import { workflowCodeBuildId } from './buildId';
import { repoRoot, type EnvOf } from './envCore';

/**
 * The kinds of work Persona's workflows are grouped in, each on a task queue and a Worker of its own
 * (temporal/taskQueues.ts says which workflow is which kind, and why).
 */
export const WORK_KINDS = ['charges', 'interactive', 'bulk', 'deliveries'] as const;
export type WorkKind = (typeof WORK_KINDS)[number];
/** What one kind's Worker runs at once. */
export interface WorkerSlots {
  activities: number;
  workflowTasks: number;
}
/**
 * `<activities>,<workflow tasks>`, e.g. `20,10`. A Worker that caches workflows runs at least two
 * workflow tasks at once (the SDK raises fewer to two); more than 1000 of either is a typo.
 */
const slotsVariable = (fallback: string) =>
  z
    .string()
    .regex(/^\s*\d+\s*,\s*\d+\s*$/, 'expected <activities>,<workflow tasks> such as 20,10')
    .default(fallback)
    .transform((v): WorkerSlots => {
      const [activities, workflowTasks] = v.split(',').map(Number) as [number, number];
      return { activities, workflowTasks };
    })
    .refine(
      (s) => s.activities >= 1 && s.activities <= 1000 && s.workflowTasks >= 2 && s.workflowTasks <= 1000,
      'activities from 1 to 1000, workflow tasks from 2 to 1000',
    );

export const workerShape = {
  /**
   * The kinds of work this worker process runs (temporal/taskQueues.ts: one task queue, one
   * Worker each): a comma-separated subset of charges, interactive, bulk, deliveries; all four by
   * default. A fleet may run some processes with `bulk` only, sized apart (docs/deployment.md).
   */
  PERSONA_WORKER_KINDS: z
    .string()
    .default(WORK_KINDS.join(','))
    .transform((v, ctx) => {
      const kinds = v
        .split(',')
        .map((k) => k.trim())
        .filter((k) => k !== '');
      const unknown = kinds.filter((k) => !(WORK_KINDS as readonly string[]).includes(k));
      if (kinds.length === 0 || unknown.length > 0 || new Set(kinds).size !== kinds.length) {
        ctx.addIssue({
          code: 'custom',
          message:
            `expected a comma-separated list of ${WORK_KINDS.join(', ')} without repeats` +
            (unknown.length > 0 ? ` (unknown: ${unknown.join(', ')})` : ''),
        });
        return z.NEVER;
      }
      return kinds as WorkKind[];
    }),
  /**
   * Each kind's slots, `<activities>,<workflow tasks>`: how many of its activities and workflow
   * tasks its Worker runs at once. An activity holds at most one Neo4j connection at a time, so the
   * worker's Neo4j pool is the sum of the activity slots of the kinds it runs, plus 10.
   * docs/deployment.md#task-queues-and-sizing says how to size them.
   */
  PERSONA_WORKER_SLOTS_CHARGES: slotsVariable('20,10'),
  PERSONA_WORKER_SLOTS_INTERACTIVE: slotsVariable('20,10'),
  PERSONA_WORKER_SLOTS_BULK: slotsVariable('6,4'),
  PERSONA_WORKER_SLOTS_DELIVERIES: slotsVariable('4,4'),
  /**
   * A folder with the workflow bundles `npm run build:workflows` wrote (the image sets it): the
   * worker loads them instead of bundling the workflow code at start. Unset, it bundles.
   */
  PERSONA_WORKFLOW_BUNDLE_DIR: z.string().min(1).optional(),
  /**
   * The Worker Deployment the worker belongs to (Temporal's Worker Versioning): every worker of one
   * build polls as version `<name>.<PERSONA_BUILD_ID>`, and gets tasks only once that version is
   * current or ramping (`npm run deploy:promote`, docs/deployment.md). No dots: Temporal joins
   * name and build id with one.
   */
  PERSONA_DEPLOYMENT_NAME: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,100}$/, 'expected letters, digits, _ or - (no dots), at most 100')
    .default('persona'),
  /**
   * The worker's build id within its deployment. Unset, it is derived from the code
   * (`workflowCodeBuildId()`: the package version and a hash of the workflow code the worker
   * bundles), so the same code is always the same version and a change to the workflows is a new one.
   */
  PERSONA_BUILD_ID: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$/, 'expected letters, digits, . _ + -, at most 100')
    .optional(),
};

export type WorkerEnv = EnvOf<typeof workerShape>;

type SlotSettings = Pick<
  WorkerEnv,
  | 'PERSONA_WORKER_SLOTS_CHARGES'
  | 'PERSONA_WORKER_SLOTS_INTERACTIVE'
  | 'PERSONA_WORKER_SLOTS_BULK'
  | 'PERSONA_WORKER_SLOTS_DELIVERIES'
>;

/** A kind's slots as configured (PERSONA_WORKER_SLOTS_<KIND>). */
export function workerSlots(s: SlotSettings, kind: WorkKind): WorkerSlots {
  const slots: Record<WorkKind, WorkerSlots> = {
    charges: s.PERSONA_WORKER_SLOTS_CHARGES,
    interactive: s.PERSONA_WORKER_SLOTS_INTERACTIVE,
    bulk: s.PERSONA_WORKER_SLOTS_BULK,
    deliveries: s.PERSONA_WORKER_SLOTS_DELIVERIES,
  };
  return slots[kind];
}

/**
 * The Worker Deployment version a worker of this configuration polls as: PERSONA_DEPLOYMENT_NAME and
 * PERSONA_BUILD_ID, or the build id derived from the workflow code (config/buildId.ts).
 */
export function workerDeploymentVersion(s: Pick<WorkerEnv, 'PERSONA_DEPLOYMENT_NAME' | 'PERSONA_BUILD_ID'>): {
  deploymentName: string;
  buildId: string;
} {
  return { deploymentName: s.PERSONA_DEPLOYMENT_NAME, buildId: s.PERSONA_BUILD_ID ?? workflowCodeBuildId(repoRoot) };
}
