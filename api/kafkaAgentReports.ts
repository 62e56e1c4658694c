/**
 * The agents' consumer's lane for payment failures (and the owner's stop on the same topic) and
 * fraud outcomes (api/kafkaConsumer.ts): one message at a time in arrival order, each into the
 * route's service, dead-lettered when refused for good, its offset committed once it was handled.
 */
import type { FraudOutcomeReport } from '../graph/fraud';
import { asRequest, failuresTopicKind, parseBody, refusalOf, type Msg } from './kafkaAgentMessages';
import { commit, deadLetter, resumeIfRoom, untilAnswered, type AgentConsumerState } from './kafkaAgentState';
import { fraudOutcomeSchema, paymentFailureSchema, paymentNoLongerOwedMessageSchema } from './requests';
import { reportFraudOutcome } from './services/fraud';
import { reportPaymentFailure } from './services/recovery';
import { paymentNoLongerOwed, topicReporter } from './services/recoveryOwnerStop';

/**
 * Hands one payment failure, owner's stop or fraud outcome to its service until it answers: what
 * is refused for good goes to the dead-letter topic; anything else throws (the consumer closing).
 */
async function handleReport(state: AgentConsumerState, m: Msg): Promise<void> {
  const { deps } = state.options;
  const { topics } = state;
  try {
    await untilAnswered(state, `${m.topic}/${m.partition}/${m.offset}`, async () => {
      if (m.topic === topics.failures && failuresTopicKind(m) === 'no_longer_owed') {
        const { payment_id: paymentId, reason, note } = parseBody(m, paymentNoLongerOwedMessageSchema);
        const word = { reason, ...(note === undefined ? {} : { note }) };
        // Taken is enough here (no one waits on a topic): the stop is in the recovery's history.
        await asRequest(deps, m, 'payment-no-longer-owed', () =>
          paymentNoLongerOwed(deps, paymentId, word, 0, topicReporter(m.topic)),
        );
      } else if (m.topic === topics.failures) {
        const f = parseBody(m, paymentFailureSchema);
        const reporter = topicReporter(m.topic).reporter;
        await asRequest(deps, m, 'payment-failure', () => reportPaymentFailure(deps, f, reporter));
      } else if (m.topic === topics.fraud) {
        const report = parseBody(m, fraudOutcomeSchema) as FraudOutcomeReport;
        await asRequest(deps, m, 'fraud-outcome', () => reportFraudOutcome(deps, report, 'agent'));
      }
    });
  } catch (err) {
    const refusal = refusalOf(err);
    if (!refusal) throw err;
    await deadLetter(state, m, refusal.reason, refusal.field);
  }
}

/**
 * Handles the queued payment failures and fraud outcomes one after another, each committed once
 * handled, until the queue is empty or the consumer closes; the stream resumes as room is made.
 */
export async function drainReports(state: AgentConsumerState): Promise<void> {
  const { logger } = state.options;
  const { queue } = state;
  while (queue.length > 0 && !state.closing) {
    const first = queue[0] as Msg;
    const run = [first];
    await handleReport(state, first);
    try {
      await commit(state, run);
    } catch (err) {
      // The partition moved to another member (a rebalance) or the broker is away: the offset
      // stays where it was, the next owner hands these messages out again, and handling them
      // again changes nothing. Never retried here: that would spin on a partition no longer ours.
      if (state.closing) throw err;
      logger.warn(
        { err, messages: run.length },
        'an offset could not be committed; the group hands the messages again',
      );
    }
    queue.shift();
    resumeIfRoom(state);
  }
}
