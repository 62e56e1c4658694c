/**
 * Trusted-device sighting — workflow id `trusted-device-<customer>-<device>-<YYYY-MM-DD>`, so a
 * checkout on a trusted device tells Chimera at most once per customer, device and day. Started
 * without waiting by the checkout read, which never slows down or fails because of it.
 */
import { workflowInfo } from '@temporalio/workflow';
import type { AgentActivities } from '../activities/agents';
import type { TrustedDeviceInput } from '../temporal/trustedDevice';
import { activitiesWithSummaries, agentNotify } from './activityOptions';
import { pinned } from './versioning';

const agents = activitiesWithSummaries<Pick<AgentActivities, 'reportTrustedDevice'>>(agentNotify, {
  reportTrustedDevice: (s) =>
    `Tell Chimera that customer ${s.customer_id} checked out on trusted device ${s.device_id} on ${s.seen_on}`,
});

pinned(trustedDeviceWorkflow);
export async function trustedDeviceWorkflow(input: TrustedDeviceInput): Promise<void> {
  await agents.reportTrustedDevice({ ...input, request_id: workflowInfo().workflowId });
}
