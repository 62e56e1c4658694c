/**
 * The event relay from ops' side: its state (parked events included), and retrying what is parked.
 * These take the Temporal client alone (not the api's deps), so the deps can build the relay's
 * gauge from them without an import circle.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { NotFoundError } from '../../graph/errors';
import {
  EVENT_RELAY_WORKFLOW_ID,
  eventRelayStatusQuery,
  retryParkedSignal,
  type EventRelayState,
} from '../../temporal/eventRelay';

export async function relayStatus(client: Client): Promise<EventRelayState> {
  try {
    return await client.workflow.getHandle(EVENT_RELAY_WORKFLOW_ID).query(eventRelayStatusQuery);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new NotFoundError('EventRelay', EVENT_RELAY_WORKFLOW_ID);
    throw err;
  }
}

export async function retryParked(client: Client, eventId: string | undefined): Promise<{ workflow_id: string }> {
  try {
    await client.workflow
      .getHandle(EVENT_RELAY_WORKFLOW_ID)
      .signal(retryParkedSignal, eventId ? { event_id: eventId } : {});
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new NotFoundError('EventRelay', EVENT_RELAY_WORKFLOW_ID);
    throw err;
  }
  return { workflow_id: EVENT_RELAY_WORKFLOW_ID };
}

/**
 * How many events the relay has parked now (its own state, whichever worker runs it), or null
 * when it is not running or does not answer within `timeoutMs`.
 */
export async function parkedEventCount(client: Client, timeoutMs = 2000): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), timeoutMs);
  });
  try {
    const state = client.workflow.getHandle(EVENT_RELAY_WORKFLOW_ID).query(eventRelayStatusQuery);
    return await Promise.race([state.then((s) => s.parked.length), timeout]);
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}
