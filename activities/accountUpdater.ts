/**
 * Asking the networks' account updater about a stored card and applying its answer
 * (graph/cardUpdates.ts): used before an expiry warning (activities/expiry.ts), after an
 * `expired_card` decline and after Mastercard's MAC 01 (activities/recovery.ts). The token goes
 * from the graph to the updater and, reissued, back into the graph encrypted; it is never logged
 * or returned.
 */
import { Context } from '@temporalio/activity';
import type { AccountUpdater } from '../clients/paymentGateway';
import { applyUpdaterAnswer, type UpdateOutcome } from '../graph/cardUpdates';
import { NotFoundError } from '../graph/errors';
import type { Graph } from '../graph/graph';
import { revealPaymentToken } from '../graph/paymentMethods';
import { inLanes } from '../runtime/lanes';

/** Asks the updater about the method's card and applies what it says; a method gone is `not_applied`. */
export async function renewFromUpdater(
  graph: Graph,
  updater: AccountUpdater,
  paymentMethodId: string,
  now = new Date(),
): Promise<UpdateOutcome> {
  let token: string;
  try {
    token = await revealPaymentToken(graph, paymentMethodId);
  } catch (err) {
    if (err instanceof NotFoundError) return { outcome: 'not_applied', reason: 'the payment method is gone' };
    throw err;
  }
  const answer = await updater.lookup(token);
  const outcome = await applyUpdaterAnswer(graph, paymentMethodId, answer, now);
  logOf()?.info('asked the account updater about a card', {
    paymentMethodId,
    answer: answer.status,
    outcome: outcome.outcome,
    ...(outcome.outcome === 'not_applied' ? { reason: outcome.reason } : {}),
  });
  return outcome;
}

/** The running activity's logger; none when called outside an activity (a direct test call). */
function logOf(): Context['log'] | null {
  try {
    return Context.current().log;
  } catch {
    return null;
  }
}

/**
 * Asks the updater about each card, `lanes` at a time, before a warning about it is sent: the
 * cards it renewed are left out of what is returned (and counted). An updater that cannot be
 * asked, or a write that fails, leaves the card in: a warning is better than none. After
 * `breakAfter` failures in a row the rest are not asked (an updater that is down must not hold
 * up the warnings and expiries behind it). `progress` runs after every card (the batch's
 * heartbeat: it may throw to stop, when the batch is cancelled).
 */
export async function withoutRenewedCards<T>(
  graph: Graph,
  updater: AccountUpdater,
  items: T[],
  paymentMethodOf: (item: T) => string,
  options: { lanes?: number; breakAfter?: number; progress?: (asked: number, of: number) => void } = {},
): Promise<{ kept: T[]; renewed: number; not_asked: number }> {
  const renewed = new Set<number>();
  const breakAfter = options.breakAfter ?? 3;
  let asked = 0;
  let failuresInARow = 0;
  await inLanes(
    items,
    options.lanes ?? 8,
    async (item, i) => {
      const id = paymentMethodOf(item);
      try {
        if ((await renewFromUpdater(graph, updater, id)).outcome === 'updated') renewed.add(i);
        failuresInARow = 0;
      } catch (err) {
        failuresInARow++;
        logOf()?.warn('the account updater could not be asked about a card; it is warned about as it is', {
          paymentMethodId: id,
          error: err instanceof Error ? err.message : String(err),
        });
      }
      asked++;
      options.progress?.(asked, items.length);
    },
    () => failuresInARow >= breakAfter,
  );
  const notAsked = items.length - asked;
  if (notAsked > 0)
    logOf()?.warn('the account updater failed several times in a row; the other cards are warned about as they are', {
      notAsked,
    });
  return { kept: items.filter((_, i) => !renewed.has(i)), renewed: renewed.size, not_asked: notAsked };
}
