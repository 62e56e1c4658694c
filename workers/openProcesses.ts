/**
 * The worker's side of the customers' open processes (graph/openProcesses.ts):
 *   - registered again by the first activity of a payment recovery or fraud outcome that this
 *     worker process runs (`openProcessActivityInterceptor`; the api registered it before its
 *     start: this covers one started another way): the customer is the one whose history key
 *     the activity's input was encrypted under (the codec learnt it decoding that input). Once
 *     per workflow and process; an activity whose registration fails is retried, so a workflow
 *     that ran an activity is in the set. An onboarding registers in its own graph transaction.
 *   - removed when the workflow closes (`openProcessSinks`: the workflow interceptor's sink,
 *     workflows/interceptors.ts). A worker dying between the close and the sink leaves the entry:
 *     the next lister drops it (graph/openProcesses.ts `runningOpenProcesses`), an erasure with
 *     the customer.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityInterceptorsFactory, InjectedSinks } from '@temporalio/worker';
import { LRUCache } from 'lru-cache';
import { ConflictError, InvalidStateError } from '../graph/errors';
import type { Graph } from '../graph/graph';
import { closeOpenProcess, registerOpenProcess } from '../graph/openProcesses';
import { isOpenProcessWorkflow, type OpenProcessSinks } from '../temporal/openProcesses';
import type { PersonaPayloadCodec } from '../temporal/payloadCodec';
import { onboardingWorkflowId } from '../temporal/workflowIds';

/** Registers a recovery's or fraud outcome's first activity (in this process) as an open process. */
export function openProcessActivityInterceptor(graph: Graph, codec: PersonaPayloadCodec): ActivityInterceptorsFactory {
  const registered = new LRUCache<string, true>({ max: 100_000 });
  return (ctx) => ({
    inbound: {
      execute: async (input, next) => {
        const workflowId = ctx.info.workflowExecution?.workflowId ?? '';
        if (
          isOpenProcessWorkflow(workflowId) &&
          !workflowId.startsWith(onboardingWorkflowId('')) &&
          !registered.has(workflowId)
        ) {
          const customerId = await codec.customerOf(workflowId);
          if (customerId !== null) {
            try {
              await registerOpenProcess(graph, workflowId, customerId);
            } catch (err) {
              // Its key is destroyed: nothing of it can be read or written any more.
              if (err instanceof InvalidStateError)
                throw ApplicationFailure.create({ type: 'CustomerErased', message: err.message, nonRetryable: true });
              if (err instanceof ConflictError)
                throw ApplicationFailure.create({ type: 'AnotherCustomers', message: err.message, nonRetryable: true });
              throw err;
            }
            registered.set(workflowId, true);
          }
        }
        return next(input);
      },
    },
  });
}

/** The `openProcesses` sink: a customer workflow closed, it leaves its customer's open processes. */
export function openProcessSinks(
  graph: Graph,
  onError: (workflowId: string, err: unknown) => void,
): InjectedSinks<OpenProcessSinks> {
  return {
    openProcesses: {
      closed: {
        // Not awaited: the SDK waits for a sink's call before it completes the activation, and a
        // Neo4j brownout must not hold up every customer workflow's last task. A removal lost so
        // (or to a worker dying) leaves an entry the next lister drops (graph/openProcesses.ts).
        fn: (info) => {
          void closeOpenProcess(graph, info.workflowId).catch((err: unknown) => onError(info.workflowId, err));
        },
        callDuringReplay: false,
      },
    },
  };
}
