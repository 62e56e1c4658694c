/**
 * What people said about a customer's account, beside what the system did, each an event under
 * the customer's lock:
 *   - what ops (or the platform) did for a customer with a reason — an export, a wallet, device or
 *     address change of a customer who is not active — as `OpsActionRecorded`, before the action;
 *     a reset of the customer's monthly auto-link count (`resetAutoLinks`) likewise, with it;
 *   - an entry of their history the customer contests, in their own words, as
 *     `HistoryEntryContested`: a new event that names the contested one, which stays as it was
 *     (nothing in the log is ever rewritten). Ops read them on the customer's page.
 */
import neo4j from 'neo4j-driver';
import { z } from 'zod';
import { lockCustomerForChangeTx } from './customers';
import { toPlain } from './convert';
import { InvalidInputError, InvalidStateError, NotFoundError } from './errors';
import { appendEvent, EVENT_PROJECTION, eventFromRow, type PersonaEvent } from './events';
import { FACT_PROJECTION, findFact } from './facts';
import { inHistory } from './feed';
import { readTx, writeTx, type Graph } from './graph';
import { parseInput, text, type CustomerStatus } from './model';

export type AuditedAction =
  | 'export'
  | 'add_payment_method'
  | 'remove_payment_method'
  | 'set_default_payment_method'
  | 'remove_device'
  | 'remove_address';

/** The longest a customer's words on a contested entry may be. */
export const CONTEST_WORDS_MAX = 1000;
const contestWords = text(CONTEST_WORDS_MAX);

const CYPHER = {
  // The customer's lock first, as every writer of its events takes it.
  lock: `
    MATCH (c:Customer {id: $id})
    SET c.updated_at = datetime.transaction()
    RETURN c.status AS status`,
  contested: `
    MATCH (c:Customer {id: $customerId})
    MATCH (e:Event {id: $eventId}) WHERE e.occurred_at IS NOT NULL AND e.transient IS NULL AND ${inHistory('c', 'e')}
    RETURN e.type AS type, toString(e.occurred_at) AS occurredAt`,
  // The customer's contests, newest first: facts (graph/facts.ts), a seek of the (customer_id,
  // type, at) index, kept after the contest's event is pruned from the graph.
  contests: `
    MATCH (f:Fact {customer_id: $customerId, type: 'HistoryEntryContested'})
    WHERE f.at IS NOT NULL
    RETURN ${FACT_PROJECTION} AS event
    ORDER BY f.at DESC
    LIMIT $limit`,
  // Contests the customer made in the last day: a range seek of the same index.
  contestsToday: `
    MATCH (f:Fact {customer_id: $customerId, type: 'HistoryEntryContested'})
    WHERE f.at > datetime.transaction() - duration('P1D')
    RETURN count(f) AS n`,
  // The auto-links the policy counts (graph/proofCheck.ts: the last 30 days), then none.
  resetAutoLinks: `
    MATCH (c:Customer {id: $id})
    WITH c, size([t IN coalesce(c.auto_linked_at, []) WHERE t > datetime.transaction() - duration('P30D')]) AS n
    REMOVE c.auto_linked_at
    RETURN n`,
  events: `
    UNWIND $ids AS id
    MATCH (e:Event {id: id})
    RETURN ${EVENT_PROJECTION} AS event`,
} as const;

export async function recordOpsAction(
  g: Graph,
  customerId: string,
  entry: { action: AuditedAction; reason: string; actor: string | null },
): Promise<void> {
  await writeTx(g, async (tx) => {
    const record = (await tx.run(CYPHER.lock, { id: customerId })).records[0];
    if (!record) throw new NotFoundError('Customer', customerId);
    await appendEvent(tx, 'OpsActionRecorded', customerId, {
      ...entry,
      customer_status: record.get('status') as CustomerStatus,
    });
  });
}

/**
 * Ops give a customer back the auto-links the policy allows a month (resolution/policy.ts): after
 * a squatter spent them, the real owner's sign-ups link again instead of going to review. One
 * transaction under the customer's lock, which onboardings take before they count the links: the
 * count is cleared and `OpsActionRecorded` ({action: reset_auto_links, reason, actor, cleared}) appended,
 * only when there was a link to clear, so a repeated reset records nothing. Active or suspended
 * customers only (InvalidStateError for an erased one, CustomerMergedError for a merged one).
 */
export async function resetAutoLinks(
  g: Graph,
  customerId: string,
  entry: { reason: string; actor: string | null },
): Promise<{ cleared: number }> {
  return writeTx(g, async (tx) => {
    const status = await lockCustomerForChangeTx(tx, customerId, ['active', 'suspended'], 'its auto-link count');
    const row = (await tx.run(CYPHER.resetAutoLinks, { id: customerId })).records[0];
    const cleared = Number(row?.get('n') ?? 0);
    if (cleared > 0)
      await appendEvent(tx, 'OpsActionRecorded', customerId, {
        action: 'reset_auto_links',
        ...entry,
        customer_status: status,
        cleared,
      });
    return { cleared };
  });
}

/** A contest as recorded: the new event's id, and whether this call recorded it (false: a repeat). */
export interface ContestRecorded {
  contest_id: string;
  contested_event_id: string;
  recorded: boolean;
}

/**
 * The customer contests an entry of their history (an event of theirs, or of a device they use,
 * as their history lists it), in one transaction under their lock: HistoryEntryContested
 * `{contested_event_id, contested_type, contested_occurred_at, words}`; the contested event is
 * not touched. Allowed while the customer is active or suspended (a suspension is what one may
 * most want to contest), never for an erased or merged record. `requestId` (a UUID the form
 * carries) makes a repeated submission record nothing new. NotFoundError when the event is not
 * in the customer's history; InvalidInputError for words that are blank or too long, or for a
 * contest of a contest.
 */
/** The most contests a customer makes in a day (a rolling 24 hours). */
export const CONTESTS_PER_DAY = 10;

export async function contestHistoryEntry(
  g: Graph,
  customerId: string,
  contest: { event_id: string; words: z.input<typeof contestWords>; request_id: string },
): Promise<ContestRecorded> {
  const words = parseInput(contestWords, contest.words, 'words');
  parseInput(z.uuid(), contest.event_id, 'event_id');
  parseInput(z.uuid(), contest.request_id, 'request_id');
  const key = `contest:${customerId}:${contest.event_id}:${contest.request_id}`;
  return writeTx(g, async (tx) => {
    await lockCustomerForChangeTx(tx, customerId, ['active', 'suspended'], 'its history');
    const target = (await tx.run(CYPHER.contested, { customerId, eventId: contest.event_id })).records[0];
    if (!target) throw new NotFoundError('History entry', contest.event_id);
    if (target.get('type') === 'HistoryEntryContested')
      throw new InvalidInputError('event_id', 'is a contest already: contest the entry it names');
    const earlier = await findFact(tx, key);
    if (earlier) return { contest_id: earlier.id, contested_event_id: contest.event_id, recorded: false };
    // Each contest is free text into the immutable log (and to ops): a day holds a bounded number.
    const today = toPlain((await tx.run(CYPHER.contestsToday, { customerId })).records[0]?.get('n')) as number;
    if (today >= CONTESTS_PER_DAY)
      throw new InvalidStateError(
        `${CONTESTS_PER_DAY} entries were contested in the last day already: ops have them; try again tomorrow`,
      );
    await appendEvent(
      tx,
      'HistoryEntryContested',
      customerId,
      {
        contested_event_id: contest.event_id,
        contested_type: target.get('type') as string,
        contested_occurred_at: target.get('occurredAt') as string,
        words,
      },
      { idempotencyKey: key },
    );
    const made = await findFact(tx, key);
    return { contest_id: made?.id ?? '', contested_event_id: contest.event_id, recorded: true };
  });
}

/** A contest with the entry it names (null when that event is gone: a restore from an older backup). */
export interface HistoryContest {
  contest: PersonaEvent;
  entry: PersonaEvent | null;
}

/** The customer's contested history entries, newest contest first (at most `limit`), each with its entry. */
export async function listHistoryContests(g: Graph, customerId: string, limit: number): Promise<HistoryContest[]> {
  return readTx(g, async (tx) => {
    const contests = (await tx.run(CYPHER.contests, { customerId, limit: neo4j.int(limit) })).records.map((r) =>
      eventFromRow(r.get('event')),
    );
    const named = (c: PersonaEvent) => {
      const id = c.payload.contested_event_id;
      return typeof id === 'string' ? id : null;
    };
    const ids = [...new Set(contests.map(named).filter((id) => id !== null))];
    const entries = new Map(
      (ids.length === 0 ? [] : (await tx.run(CYPHER.events, { ids })).records)
        .map((r) => eventFromRow(r.get('event')))
        .map((e) => [e.id, e]),
    );
    return contests.map((contest) => ({ contest, entry: entries.get(named(contest) ?? '') ?? null }));
  });
}
