/**
 * The agents' read path and writes: customer context, checkout options (telling Chimera about a
 * trusted device without slowing the read), device trust, payment-method deactivation.
 */
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { checkoutFromSnapshot, contextFromSnapshot } from '../../graph/context';
import { setDeviceTrustScore } from '../../graph/fraud';
import { updatePaymentMethodStatus } from '../../graph/walletDefaults';
import { fromMinorUnits } from '../../payments/money';
import { personaCustomerId } from '../../temporal/searchAttributes';
import {
  TRUSTED_DEVICE_WORKFLOW_TYPE,
  trustedDeviceWorkflowId,
  type TrustedDeviceInput,
} from '../../temporal/trustedDevice';
import type { Principal, Scope } from '../auth';
import type { ApiDeps } from '../deps';
import type { ConsistencyToken } from '../consistency';
import { TokenNotMetError } from '../consistency';
import { walletItem } from './customers';
import { reporterOf } from './fraud';
import { mergedInto, refuseMergedAnswer } from './mergedIds';
import { taskQueueFor } from '../../temporal/taskQueues';

/**
 * How long a read may take: the read deadline, or less when the caller (a gRPC deadline) has
 * less time left. An answer later than that is of no use to an authorisation: 503 / UNAVAILABLE.
 */
function readBudget(deps: ApiDeps, callerBudgetMs?: number): number {
  const own = deps.limits.readDeadlineMs;
  return callerBudgetMs !== undefined && callerBudgetMs < own ? Math.max(1, callerBudgetMs) : own;
}

/** What a read answered from the cache while Neo4j could not answer adds: `stale` and `as_of`. */
function staleness(asOf: Date | undefined): { stale?: true; as_of?: string } {
  return asOf ? { stale: true, as_of: asOf.toISOString() } : {};
}

/**
 * The customer context of the API contract: LTV as an exact decimal in the reporting currency.
 * `minVersion`: a write's consistency token the answer must reflect.
 */
export async function customerContext(
  deps: ApiDeps,
  customerId: string,
  callerBudgetMs?: number,
  minVersion: ConsistencyToken | null = null,
) {
  const read = await deps.readCache.read(customerId, readBudget(deps, callerBudgetMs), minVersion);
  const { ltv_minor, predicted_ltv_minor, ...context } = contextFromSnapshot(read.snapshot, deps.policy);
  const currency = deps.graph.policy.reportingCurrency;
  return {
    ...context,
    ltv: fromMinorUnits(ltv_minor, currency),
    ltv_currency: currency,
    predicted_ltv: predicted_ltv_minor === null ? null : fromMinorUnits(predicted_ltv_minor, currency),
    ...mergedInto(read.snapshot.merged_into),
    ...staleness(read.staleAsOf),
  };
}

export async function checkoutOptions(
  deps: ApiDeps,
  customerId: string,
  deviceId: string | null,
  caller: { principal: Principal; scopes: readonly Scope[] },
  callerBudgetMs?: number,
  minVersion: ConsistencyToken | null = null,
) {
  const read = await deps.readCache.read(customerId, readBudget(deps, callerBudgetMs), minVersion).catch((err) => {
    // A merged record's own caller is refused as for any answer about the survivor, before the token.
    if (err instanceof TokenNotMetError)
      refuseMergedAnswer(caller.principal, caller.scopes, { merged_into: err.mergedInto });
    throw err;
  });
  // A merged record's own token is refused here, before anything is told to Chimera: the survivor's
  // trusted device is not that token's to report (the route refuses the answer too).
  refuseMergedAnswer(caller.principal, caller.scopes, { merged_into: read.snapshot.merged_into });
  const options = checkoutFromSnapshot(read.snapshot, deviceId, deps.policy);
  // A stale answer is no news for Chimera: only a current one reports the device.
  if (options.trusted_device && deviceId && options.status === 'active' && !read.staleAsOf) {
    reportTrustedDevice(deps, {
      // The survivor's, when the id asked for was merged into it: the device is the survivor's now.
      customer_id: read.snapshot.customer_id,
      device_id: deviceId,
      seen_on: new Date().toISOString().slice(0, 10),
    });
  }
  return {
    data: options.data.map(walletItem),
    trusted_device: options.trusted_device,
    ...mergedInto(read.snapshot.merged_into),
    ...staleness(read.staleAsOf),
  };
}

/**
 * Starts the day's trusted-device workflow in the background. Neither a slow nor an unreachable
 * Temporal (nor Chimera, which only the workflow talks to) delays or fails the read. What this
 * process started already, and when it last warned, is `deps.trustedDeviceReports`.
 */
function reportTrustedDevice(deps: ApiDeps, input: TrustedDeviceInput): void {
  const workflowId = trustedDeviceWorkflowId(input);
  const reported = deps.trustedDeviceReports;
  if (reported.has(workflowId)) return;
  const remember = (): void => reported.remember(workflowId);
  deps.temporal.client.workflow
    .start(TRUSTED_DEVICE_WORKFLOW_TYPE, {
      workflowId,
      taskQueue: taskQueueFor(deps.temporal.taskQueues, TRUSTED_DEVICE_WORKFLOW_TYPE),
      args: [input],
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      typedSearchAttributes: [{ key: personaCustomerId, value: input.customer_id }],
      staticSummary: `Tell Chimera the customer checked out on trusted device ${input.device_id} on ${input.seen_on}`,
    })
    .then(remember, (err: unknown) => {
      if (err instanceof WorkflowExecutionAlreadyStartedError) return remember();
      if (!reported.mayWarn()) return;
      deps.logger.warn(
        { err, workflowId },
        'could not start the trusted-device report; the next checkout tries again (said once a minute)',
      );
    });
}

/** A device-level trust signal; an agent's does not raise what an outcome ops confirmed set (graph/fraud.ts). */
export function setDeviceTrust(deps: ApiDeps, principal: Principal, deviceId: string, score: number, reason?: string) {
  return setDeviceTrustScore(deps.graph, deviceId, score, { reason, reportedBy: reporterOf(principal) });
}

export async function markPaymentMethodInactive(deps: ApiDeps, paymentMethodId: string, reason: string) {
  const entry = await updatePaymentMethodStatus(deps.graph, paymentMethodId, 'inactive', { reason });
  return { ...walletItem(entry), customer_id: entry.customer_id };
}
