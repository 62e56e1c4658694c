/** The event relay from ops' side: its state (parked events included), and retrying what is parked. */
import { WorkflowNotFoundError } from '@temporalio/client';
import { NotFoundError } from '../../graph/errors';
import { EVENT_RELAY_WORKFLOW_ID, eventRelayStatusQuery, retryParkedSignal, type EventRelayState } from '../../temporal/eventRelay';
import type { ApiDeps } from '../deps';

export async function relayStatus(deps: ApiDeps): Promise<EventRelayState> {
  try {
    return await deps.temporal.client.workflow.getHandle(EVENT_RELAY_WORKFLOW_ID).query(eventRelayStatusQuery);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new NotFoundError('EventRelay', EVENT_RELAY_WORKFLOW_ID);
    throw err;
  }
}

export async function retryParked(deps: ApiDeps, eventId: string | undefined): Promise<{ workflow_id: string }> {
  try {
    await deps.temporal.client.workflow.getHandle(EVENT_RELAY_WORKFLOW_ID).signal(retryParkedSignal, eventId ? { event_id: eventId } : {});
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new NotFoundError('EventRelay', EVENT_RELAY_WORKFLOW_ID);
    throw err;
  }
  return { workflow_id: EVENT_RELAY_WORKFLOW_ID };
}
