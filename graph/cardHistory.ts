/**
 * What the card networks count, per card identity: a `CardIdentity` node per processor card
 * fingerprint (the same for every token of one card, so a card tokenised again, or stored by two
 * customers, has one history). It holds every charge of the last 31 days under a digest of its
 * idempotency key (the key names a payment; its digest names nothing) with what the network
 * answered, the account-updater lookups, and — for good — the verdict of a network rule that bars
 * the card permanently (Visa category 1, Mastercard MAC 03/21; Persona's own do-not-retry codes
 * bar it only while the decline is kept). No customer id, token or card number is kept here.
 *
 * The governor (payments/networkRules.ts) decides on this history inside the transaction that
 * reserves a charge (graph/recovery.ts), under the card's lock: two reservations of one card
 * count one after the other (the charges themselves may overlap). A charge is appended `pending`
 * when reserved and given its answer once the gateway gave one; the same key again is the same
 * charge. The decline a recovery starts from is added under `reported:<payment id>`.
 */
import { createHash } from 'node:crypto';
import type { ManagedTransaction } from 'neo4j-driver';
import {
  decideRetry,
  type CardAttempt,
  type CardHistory,
  type RetryVerdict,
  type RuleTable,
} from '../payments/networkRules';
import { lockNode, readTx, writeTx, type Graph } from './graph';

/** A card as the processor identifies it. */
export interface CardIdentity {
  fingerprint: string;
  network: string;
}

/** One charge in the history: its key, and `pending` until the gateway's answer is recorded. */
export interface StoredAttempt extends Omit<CardAttempt, 'outcome'> {
  key: string;
  outcome: CardAttempt['outcome'] | 'pending';
}

/** What the gateway answered a charge, as far as the networks' rules care. */
export interface CardAnswer {
  outcome: 'succeeded' | 'declined';
  decline_code?: string | null;
  category?: number | null;
  advice_code?: string | null;
}

/** How long attempts are kept: the longest rule window (30 days) and a day. */
const KEEP_MS = 31 * 86_400_000;

/** What the history keeps of an idempotency key: enough to know it again, nothing to trace it by. */
const digest = (key: string) => createHash('sha256').update(key).digest('hex').slice(0, 32);

/** Whether a `never` verdict is one the card keeps after its decline ages out. */
function permanent(table: RuleTable, v: RetryVerdict): v is Extract<RetryVerdict, { verdict: 'never' }> {
  if (v.verdict !== 'never') return false;
  const rule = table.rules.find((r) => r.id === v.rule.id);
  return rule?.kind === 'never_after' && rule.permanent === true;
}

const CYPHER = {
  card: `
    MERGE (k:CardIdentity {fingerprint: $fingerprint})
      ON CREATE SET k.network = $network, k.attempts = [], k.lookups = [], k.created_at = datetime.transaction()
    ${lockNode('k')}
    RETURN k.attempts AS attempts, k.lookups AS lookups, k.barred AS barred, k.network AS network`,
  save: `
    MATCH (k:CardIdentity {fingerprint: $fingerprint})
    SET k.attempts = $attempts, k.lookups = $lookups, k.barred = $barred, k.updated_at = datetime.transaction()`,
  read: `
    MATCH (k:CardIdentity {fingerprint: $fingerprint})
    RETURN k.attempts AS attempts, k.lookups AS lookups, k.barred AS barred, k.network AS network`,
  methodCard: `
    MATCH (p:PaymentMethod {id: $id})
    RETURN p.card_fingerprint AS fingerprint, p.card_network AS network`,
  setMethodCard: `
    MATCH (p:PaymentMethod {id: $id})
    SET p.card_fingerprint = $fingerprint, p.card_network = $network`,
  // The customer's methods: their cards as named, and the sealed token to name one not yet named.
  methodCards: `
    UNWIND $ids AS id
    MATCH (:Customer {id: $customerId})-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod {id: id})
    RETURN p.id AS id, p.card_fingerprint AS fingerprint, p.card_network AS network, p.token AS token`,
  // Only onto the token the processor named: a renewal that replaced it meanwhile wins.
  nameMethods: `
    UNWIND $names AS n
    MATCH (:Customer {id: $customerId})-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod {id: n.id})
    WHERE p.token = n.token
    SET p.card_fingerprint = n.fingerprint, p.card_network = n.network`,
} as const;

/** The card a payment method is, as the processor named it; null until it was asked. */
export async function cardOfMethod(g: Graph, paymentMethodId: string): Promise<CardIdentity | null> {
  const r = await readTx(g, async (tx) => (await tx.run(CYPHER.methodCard, { id: paymentMethodId })).records[0]);
  const fingerprint = r?.get('fingerprint') as string | null | undefined;
  return fingerprint ? { fingerprint, network: (r?.get('network') as string | null) ?? 'unknown' } : null;
}

/** Keeps the processor's name for the method's card (asked once; the same answer changes nothing). */
export async function setCardOfMethod(g: Graph, paymentMethodId: string, card: CardIdentity): Promise<void> {
  await writeTx(g, (tx) => tx.run(CYPHER.setMethodCard, { id: paymentMethodId, ...card }));
}

/** A wallet's method as a charge needs it: its card as named (null until asked) and its token. */
export interface MethodCard {
  card: CardIdentity | null;
  /** The method's payment token as stored (encrypted): what a name is kept for. */
  sealed: string;
  /** The method's payment token, decrypted only when asked for (to have the processor name it). */
  token: () => string;
}

/** A name the processor gave a method's card, for the token it named (sealed, as stored). */
export interface MethodName {
  payment_method_id: string;
  card: CardIdentity;
  sealed: string;
}

/**
 * The cards of a customer's methods, in one read: what a charge reads before it reserves (the
 * card it charges and the one the recovery started from). A method not in the customer's wallet
 * is missing from the answer: another customer's is never named, asked about or counted against.
 */
export async function methodCards(
  g: Graph,
  customerId: string,
  paymentMethodIds: string[],
): Promise<Map<string, MethodCard>> {
  const records = await readTx(
    g,
    async (tx) => (await tx.run(CYPHER.methodCards, { customerId, ids: paymentMethodIds })).records,
  );
  const out = new Map<string, MethodCard>();
  for (const r of records) {
    const id = r.get('id') as string;
    const fingerprint = r.get('fingerprint') as string | null;
    const sealed = r.get('token') as string;
    out.set(id, {
      card: fingerprint ? { fingerprint, network: (r.get('network') as string | null) ?? 'unknown' } : null,
      sealed,
      token: () => g.tokens.decrypt(sealed, id),
    });
  }
  return out;
}

/**
 * Inside a customer's write transaction (its lock held): keeps the processor's names for the
 * customer's methods' cards, each only while the method still has the token that was named (a
 * renewal that replaced it meanwhile, and cleared the name, wins). A method no longer in the
 * wallet is left alone.
 */
export async function nameMethodsTx(tx: ManagedTransaction, customerId: string, names: MethodName[]): Promise<void> {
  if (names.length === 0) return;
  await tx.run(CYPHER.nameMethods, {
    customerId,
    names: names.map((n) => ({ id: n.payment_method_id, token: n.sealed, ...n.card })),
  });
}

interface Loaded {
  attempts: StoredAttempt[];
  lookups: string[];
  barred: Extract<RetryVerdict, { verdict: 'never' }> | null;
  network: string;
}

function parse(r: { get(key: string): unknown }, fallbackNetwork: string): Loaded {
  const barred = r.get('barred') as string | null;
  return {
    attempts: ((r.get('attempts') as string[] | null) ?? []).map((a) => JSON.parse(a) as StoredAttempt),
    lookups: (r.get('lookups') as string[] | null) ?? [],
    barred: barred ? (JSON.parse(barred) as Loaded['barred']) : null,
    network: (r.get('network') as string | null) ?? fallbackNetwork,
  };
}

async function loadLocked(tx: ManagedTransaction, card: CardIdentity): Promise<Loaded> {
  const r = (await tx.run(CYPHER.card, card)).records[0];
  if (!r) throw new Error(`card ${card.fingerprint} could not be read`);
  return parse(r, card.network);
}

async function save(tx: ManagedTransaction, fingerprint: string, l: Loaded, now: Date): Promise<void> {
  const since = now.getTime() - KEEP_MS;
  await tx.run(CYPHER.save, {
    fingerprint,
    attempts: l.attempts.filter((a) => Date.parse(a.at) > since).map((a) => JSON.stringify(a)),
    lookups: l.lookups.filter((at) => Date.parse(at) > since),
    barred: l.barred ? JSON.stringify(l.barred) : null,
  });
}

/**
 * The governor's view. A pending charge (reserved, its answer not recorded: in flight, or its
 * worker died) counts as the worst it can turn out to be short of a bar: a decline, of Visa's
 * generic category 4 — so it counts towards every cap of charges, declines and reattempts, and
 * the charge after it is a reattempt.
 */
function historyOf(l: Loaded): CardHistory {
  return {
    attempts: l.attempts.map((a) =>
      a.outcome === 'pending'
        ? { ...a, outcome: 'declined' as const, decline_code: null, category: 4, advice_code: null }
        : { ...a, outcome: a.outcome },
    ),
    updater_lookups: l.lookups,
  };
}

/**
 * Inside the reserving transaction: may this card be charged now under `key`? A key the card has
 * seen is the same charge (allowed, nothing added); otherwise the governor decides, and an allowed
 * charge is appended `pending`.
 */
export async function governChargeTx(
  tx: ManagedTransaction,
  card: CardIdentity,
  key: string,
  table: RuleTable,
  now: Date,
): Promise<RetryVerdict> {
  const l = await loadLocked(tx, card);
  const k = digest(key);
  if (l.attempts.some((a) => a.key === k)) return { verdict: 'allowed', table: table.version };
  if (l.barred) return l.barred;
  const verdict = decideRetry(table, l.network, historyOf(l), now);
  if (verdict.verdict !== 'allowed') return verdict;
  l.attempts.push({ key: k, at: now.toISOString(), outcome: 'pending', network: l.network });
  await save(tx, card.fingerprint, l, now);
  return verdict;
}

/**
 * The gateway's answer to the charge under `key`, recorded (again: the same answer changes
 * nothing). A decline that bars the card for good (Visa category 1, Mastercard MAC 03/21, a
 * do-not-retry code) is kept as the card's bar after its attempt has aged out.
 */
export async function recordCardAnswer(
  g: Graph,
  card: CardIdentity,
  key: string,
  answer: CardAnswer,
  table: RuleTable,
  now = new Date(),
): Promise<void> {
  await writeTx(g, (tx) => recordCardAnswerTx(tx, card, key, answer, table, now));
}

/** `recordCardAnswer` inside a transaction of the caller's (the charge ledger's answer). */
export async function recordCardAnswerTx(
  tx: ManagedTransaction,
  card: CardIdentity,
  key: string,
  answer: CardAnswer,
  table: RuleTable,
  now: Date,
): Promise<void> {
  const l = await loadLocked(tx, card);
  const attempt = l.attempts.find((a) => a.key === digest(key));
  if (!attempt) return;
  // A wait the network asks for runs from its answer, which may come long after the reservation
  // (the gateway retried): the first answer recorded moves the charge's time to the recording
  // (moments after the answer; later only when the activity was retried: never earlier).
  if (attempt.outcome === 'pending') attempt.at = now.toISOString();
  Object.assign(attempt, {
    outcome: answer.outcome,
    decline_code: answer.decline_code ?? null,
    category: answer.category ?? null,
    advice_code: answer.advice_code ?? null,
  });
  if (!l.barred && answer.outcome === 'declined') {
    const after = decideRetry(table, l.network, historyOf(l), now);
    if (permanent(table, after)) l.barred = after;
  }
  await save(tx, card.fingerprint, l, now);
}

/** A decline a recovery started from, as the failure report gave it. */
export interface ReportedDecline {
  decline_code: string;
  advice_code?: string | undefined;
}

/**
 * Inside the reserving transaction: the decline a recovery starts from (reported by the agent that
 * charged: its code and, for a Mastercard decline, the advice code when the report carries it),
 * added once to the card's history under `reported:<payment id>`, so that the same card under
 * another token is not charged as if it had never declined.
 */
export async function recordReportedDeclineTx(
  tx: ManagedTransaction,
  card: CardIdentity,
  paymentId: string,
  decline: ReportedDecline,
  table: RuleTable,
  now: Date,
): Promise<void> {
  const l = await loadLocked(tx, card);
  const k = digest(`reported:${paymentId}`);
  if (l.attempts.some((a) => a.key === k)) return;
  const attempt = {
    key: k,
    at: now.toISOString(),
    outcome: 'declined' as const,
    network: l.network,
    decline_code: decline.decline_code,
  };
  l.attempts.push(attempt);
  // A bar for good comes from the decline code alone: an advice code only a reporter vouches for
  // counts while the decline is kept (31 days; MAC 03/21 hold it 30), never bars the card — shared
  // by every customer who stores it — for good.
  if (!l.barred) {
    const after = decideRetry(table, l.network, historyOf(l), now);
    if (permanent(table, after)) l.barred = after;
  }
  // Only Mastercard's advice codes mean anything to the rules.
  if (decline.advice_code && l.network === 'mastercard') Object.assign(attempt, { advice_code: decline.advice_code });
  await save(tx, card.fingerprint, l, now);
}

/**
 * Inside a transaction about to lock two cards' histories: takes the lock of the one whose
 * fingerprint sorts first, so that two transactions locking the same two cards wait for each
 * other instead of deadlocking.
 */
export async function lockCardsInOrderTx(tx: ManagedTransaction, cards: CardIdentity[]): Promise<void> {
  const distinct = [...new Map(cards.map((c) => [c.fingerprint, c])).values()];
  if (distinct.length < 2) return;
  distinct.sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : 1));
  for (const card of distinct) await loadLocked(tx, card);
}

/** An account-updater lookup of the card: after a MAC 01 decline, it allows the retry. */
export async function recordUpdaterLookup(g: Graph, card: CardIdentity, now = new Date()): Promise<void> {
  await writeTx(g, async (tx) => {
    const l = await loadLocked(tx, card);
    l.lookups.push(now.toISOString());
    await save(tx, card.fingerprint, l, now);
  });
}

/** The card's history as kept (tests, ops): null when the card was never charged. */
export async function readCardHistory(g: Graph, fingerprint: string): Promise<Loaded | null> {
  return readTx(g, async (tx) => {
    const r = (await tx.run(CYPHER.read, { fingerprint })).records[0];
    return r ? parse(r, 'unknown') : null;
  });
}

/**
 * What the governor would say of a charge of this card at `now`, from its history as kept (read
 * without the lock: a forecast for scheduling; the reservation decides under the lock). A card
 * never charged is allowed.
 */
export async function forecastCharge(g: Graph, card: CardIdentity, table: RuleTable, now: Date): Promise<RetryVerdict> {
  const l = await readTx(g, async (tx) => {
    const r = (await tx.run(CYPHER.read, { fingerprint: card.fingerprint })).records[0];
    return r ? parse(r, card.network) : null;
  });
  if (!l) return { verdict: 'allowed', table: table.version };
  if (l.barred) return l.barred;
  return decideRetry(table, l.network, historyOf(l), now);
}
