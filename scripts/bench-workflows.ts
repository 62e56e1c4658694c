/**
 * The workflows a benchmark's worker bundles: Persona's own, and the bare baseline a benchmark
 * compares one with — a workflow that runs `activities` no-op activities one after another, as
 * the measured workflow runs its activities, and nothing else. Workflow code: no I/O here.
 */
import { proxyActivities } from '@temporalio/workflow';

export * from '../workflows';

const { benchNoop } = proxyActivities<{ benchNoop(i: number): Promise<number> }>({
  startToCloseTimeout: '10 seconds',
});

/** `activities` no-op activities in sequence: what a workflow with that many costs Temporal and the worker. */
export async function benchBareWorkflow(activities: number): Promise<number> {
  let done = 0;
  for (let i = 0; i < activities; i++) done += await benchNoop(i);
  return done;
}
