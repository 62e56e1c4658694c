/**
 * Workflow interceptors (registered by the worker): the request id that started a workflow —
 * the `persona-request-id` header the api's client sets — joins every log line of the workflow
 * (beside the workflow id and run id the SDK adds) and travels on with each activity it
 * schedules, each workflow it signals or starts, and its continue-as-new run. A signal that
 * comes from another request is logged with that request's id.
 */
import { log, type WorkflowInterceptorsFactory } from '@temporalio/workflow';
import { requestIdOf, withRequestId } from '../temporal/requestId';

export const interceptors: WorkflowInterceptorsFactory = () => {
  // One closure per workflow execution: the factory runs once for each.
  let requestId: string | undefined;
  return {
    internals: [
      {
        // Read at the first activation, before its signals and the SDK's "Workflow started" line.
        activate: (input, next) => {
          const init = input.activation.jobs?.[0]?.initializeWorkflow;
          if (init) requestId = requestIdOf(init.headers);
          return next(input);
        },
      },
    ],
    inbound: [
      {
        handleSignal: (input, next) => {
          const from = requestIdOf(input.headers);
          if (from && from !== requestId) log.info(`signal ${input.signalName} received`, { signalRequestId: from });
          return next(input);
        },
      },
    ],
    outbound: [
      {
        getLogAttributes: (input, next) => (requestId ? { ...next(input), requestId } : next(input)),
        scheduleActivity: (input, next) => next({ ...input, headers: withRequestId(input.headers, requestId) }),
        scheduleLocalActivity: (input, next) => next({ ...input, headers: withRequestId(input.headers, requestId) }),
        signalWorkflow: (input, next) => next({ ...input, headers: withRequestId(input.headers, requestId) }),
        startChildWorkflowExecution: (input, next) =>
          next({ ...input, headers: withRequestId(input.headers, requestId) }),
        continueAsNew: (input, next) => next({ ...input, headers: withRequestId(input.headers, requestId) }),
      },
    ],
  };
};
