/**
 * The customer workflows that keep themselves in their customer's open processes
 * (graph/openProcesses.ts), and the sink their close goes through: safe to import in workflow code.
 */
import type { Sinks } from '@temporalio/workflow';
import { fraudOutcomeWorkflowId } from './fraud';
import { recoveryWorkflowId } from './recovery';
import { onboardingWorkflowId } from './workflowIds';

/** Payment recoveries, fraud outcomes and onboardings (the workflows with a customer's history key). */
export const OPEN_PROCESS_PREFIXES: readonly string[] = [
  onboardingWorkflowId(''),
  recoveryWorkflowId(''),
  fraudOutcomeWorkflowId(''),
];

export function isOpenProcessWorkflow(workflowId: string): boolean {
  return OPEN_PROCESS_PREFIXES.some((p) => workflowId.startsWith(p));
}

/** The sink a workflow's interceptor calls when the workflow closes (workflows/interceptors.ts). */
export interface OpenProcessSinks extends Sinks {
  openProcesses: {
    /** The workflow completed, failed or was cancelled (a continue-as-new is not a close). */
    closed(): void;
  };
}
