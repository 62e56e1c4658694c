/**
 * Customer notifications, sent at most once per key. Before a notification goes out its key is
 * claimed as a `Notification` node (unique on `key`); only the claim's owner sends it, and the
 * CustomerNotified event is appended when the send is recorded, in the same transaction. So:
 *   - a retried activity (same owner) resends with the same key, which the receiver dedupes;
 *   - a re-run finds the claim recorded as sent and sends nothing;
 *   - an overlapping run finds the claim owned by someone else and sends nothing;
 *   - a claim whose owner vanished (a terminated workflow) is taken over after the lease.
 */
import neo4j, { type ManagedTransaction } from 'neo4j-driver';
import { lockCustomersTx } from './customers';
import { appendEvents } from './events';
import { readTx, writeTx, type Graph } from './graph';

/** How a notification reaches the customer. */
export type Channel = 'email' | 'sms';

export interface NotificationClaim {
  key: string;
  customer_id: string;
  kind: string;
}

export interface ClaimOutcome {
  /** This owner holds the claim and the notification is not recorded as sent: send it. */
  mine: boolean;
  /** Recorded as sent already (by anyone); the channel it went out on. */
  sent: boolean;
  /** Sent or refused for good: nobody will send it again. */
  settled: boolean;
  channel: Channel | null;
}

export interface SentNotification {
  key: string;
  customer_id: string;
  kind: string;
  channel: Channel | null;
  /** Extra event payload fields naming what the notification is about (never personal data). */
  subject?: Record<string, string | number | boolean | null>;
}

/** How long a claim stays with an owner that has not recorded the send. */
export const DEFAULT_CLAIM_LEASE_MS = 10 * 60_000;

const CYPHER = {
  // Keys already recorded as sent (or refused) are answered without taking a lock, so a re-run only reads.
  // An abandoned claim is taken over under its lock (the first SET takes it), so two runs never
  // both take over the same one.
  claim: `
    UNWIND $items AS it
    OPTIONAL MATCH (prior:Notification {key: it.key})
    WITH it, prior
    CALL (it, prior) {
      WITH it, prior WHERE prior IS NULL OR (prior.sent_at IS NULL AND prior.rejected_at IS NULL)
      MERGE (n:Notification {key: it.key})
        ON CREATE SET n.customer_id = it.customer_id, n.kind = it.kind, n.owner = $owner,
                      n.claimed_at = datetime.realtime()
      WITH n
      CALL (n) {
        WITH n WHERE n.owner <> $owner AND n.sent_at IS NULL
        SET n.lease_checked_at = datetime.realtime()
        WITH n WHERE n.sent_at IS NULL AND n.claimed_at < datetime.realtime() - duration({milliseconds: $leaseMs})
        SET n.owner = $owner, n.claimed_at = datetime.realtime()
      }
      RETURN n
    UNION
      WITH it, prior WHERE prior IS NOT NULL AND (prior.sent_at IS NOT NULL OR prior.rejected_at IS NOT NULL)
      RETURN prior AS n
    }
    RETURN it.key AS key, n.owner = $owner AND n.sent_at IS NULL AND n.rejected_at IS NULL AS mine,
           n.sent_at IS NOT NULL AS sent, n.sent_at IS NOT NULL OR n.rejected_at IS NOT NULL AS settled,
           n.channel AS channel`,
  // Marks sends as recorded under each claim's lock; only rows that change here get an event.
  record: `
    UNWIND $items AS it
    MATCH (n:Notification {key: it.key})
    SET n.recorded_check_at = datetime.realtime()
    WITH n, it WHERE n.sent_at IS NULL
    SET n.sent_at = datetime.realtime(), n.channel = it.channel, n.sent_by = $owner
    RETURN it.key AS key`,
  reject: `
    UNWIND $items AS it
    MATCH (n:Notification {key: it.key}) WHERE n.sent_at IS NULL
    SET n.rejected_at = datetime.realtime(), n.rejection = it.reason`,
  // The common case on a re-run: the key is settled already. A read, no locks.
  settled: `
    UNWIND $keys AS key
    MATCH (n:Notification {key: key})
    WHERE n.sent_at IS NOT NULL OR n.rejected_at IS NOT NULL
    RETURN key, n.sent_at IS NOT NULL AS sent, n.channel AS channel`,
  contacts: `
    UNWIND $customerIds AS id
    MATCH (c:Customer {id: id})
    OPTIONAL MATCH (c)-[:HAS_DIGITAL_IDENTIFIER]->(d:DigitalIdentifier)
    RETURN id, collect(d {.type, .is_verified}) AS identifiers`,
} as const;

/** Claims notification keys for `owner`; says per key whether to send. */
export async function claimNotifications(
  g: Graph,
  items: NotificationClaim[],
  owner: string,
  leaseMs = DEFAULT_CLAIM_LEASE_MS,
): Promise<Map<string, ClaimOutcome>> {
  return (await claimAndReach(g, items, owner, leaseMs, false)).claims;
}

/** How to reach customers: any channel, and a verified one only (null: no way). */
export interface Reach {
  channels: Map<string, Channel | null>;
  verifiedChannels: Map<string, Channel | null>;
}

/**
 * `claimNotifications`, and how to reach the customers whose notifications this owner now holds,
 * read in the claiming transaction: one round trip fewer for each notification sent.
 */
export async function claimNotificationsAndReach(
  g: Graph,
  items: NotificationClaim[],
  owner: string,
  leaseMs = DEFAULT_CLAIM_LEASE_MS,
): Promise<{ claims: Map<string, ClaimOutcome> } & Reach> {
  return claimAndReach(g, items, owner, leaseMs, true);
}

async function claimAndReach(
  g: Graph,
  items: NotificationClaim[],
  owner: string,
  leaseMs: number,
  reach: boolean,
): Promise<{ claims: Map<string, ClaimOutcome> } & Reach> {
  const outcomes = new Map<string, ClaimOutcome>();
  const none: Reach = { channels: new Map(), verifiedChannels: new Map() };
  if (items.length === 0) return { claims: outcomes, ...none };
  // A batch (a scan's page, often a re-run) first reads which keys are settled, without a lock; a
  // single notification goes straight to the claim, whose query answers a settled key alike.
  const settled =
    items.length === 1
      ? []
      : await readTx(g, async (tx) => (await tx.run(CYPHER.settled, { keys: items.map((i) => i.key) })).records);
  for (const r of settled) {
    outcomes.set(r.get('key') as string, {
      mine: false,
      sent: r.get('sent') as boolean,
      settled: true,
      channel: (r.get('channel') as Channel | null) ?? null,
    });
  }
  const open = items.filter((i) => !outcomes.has(i.key));
  if (open.length === 0) return { claims: outcomes, ...none };
  const contacts = await writeTx(g, async (tx) => {
    // `outcomes` is written over on every attempt: the claim answers a row for every open key.
    const claimed = (await tx.run(CYPHER.claim, { items: open, owner, leaseMs: neo4j.int(leaseMs) })).records;
    for (const r of claimed) {
      outcomes.set(r.get('key') as string, {
        mine: r.get('mine') as boolean,
        sent: r.get('sent') as boolean,
        settled: r.get('settled') as boolean,
        channel: (r.get('channel') as Channel | null) ?? null,
      });
    }
    const customers = [...new Set(open.filter((i) => outcomes.get(i.key)?.mine).map((i) => i.customer_id))];
    return reach ? readContactsTx(tx, customers) : [];
  });
  return { claims: outcomes, ...reachOf(contacts) };
}

type Contacts = { id: string; identifiers: { type: string; is_verified: boolean }[] }[];

async function readContactsTx(tx: ManagedTransaction, customerIds: string[]): Promise<Contacts> {
  if (customerIds.length === 0) return [];
  const rows = (await tx.run(CYPHER.contacts, { customerIds })).records;
  return rows.map((r) => ({
    id: r.get('id') as string,
    identifiers: r.get('identifiers') as Contacts[number]['identifiers'],
  }));
}

/**
 * How to reach each customer: a verified email first, then a verified phone, an unverified email
 * as a last resort (not in `verifiedChannels`); null when there is no way (or no such customer).
 */
function reachOf(contacts: Contacts): Reach {
  const out: Reach = { channels: new Map(), verifiedChannels: new Map() };
  for (const { id, identifiers } of contacts) {
    const has = (type: string, verified: boolean): boolean =>
      identifiers.some((i) => i.type === type && (!verified || i.is_verified));
    const verified = has('email', true) ? 'email' : has('phone_number', true) ? 'sms' : null;
    out.verifiedChannels.set(id, verified);
    out.channels.set(id, verified ?? (has('email', false) ? 'email' : null));
  }
  return out;
}

/**
 * Records sends (or a customer with no channel) and appends their CustomerNotified events
 * (`{kind, channel, ...subject}`, idempotency key `notify:<key>`) in one transaction. Returns the
 * keys recorded by this call; a key someone else recorded first is left alone.
 */
export async function recordNotificationsSent(
  g: Graph,
  items: SentNotification[],
  owner: string,
): Promise<Set<string>> {
  if (items.length === 0) return new Set();
  return writeTx(g, async (tx) => {
    // The customers' locks before the claims' (the lock order, graph/graph.ts): the erasure of
    // one of them, which deletes its claims, commits wholly before or after this.
    await lockCustomersTx(
      tx,
      items.map((i) => i.customer_id),
    );
    const res = await tx.run(CYPHER.record, { items: items.map((i) => ({ key: i.key, channel: i.channel })), owner });
    const recorded = new Set(res.records.map((r) => r.get('key') as string));
    await appendEvents(
      tx,
      items
        .filter((i) => recorded.has(i.key))
        .map((i) => ({
          type: 'CustomerNotified' as const,
          customerId: i.customer_id,
          payload: { kind: i.kind, channel: i.channel, ...(i.subject ?? {}) },
          idempotencyKey: `notify:${i.key}`,
        })),
    );
    return recorded;
  });
}

/** Marks notifications the receiver refused for good: no run sends them again. */
export async function recordNotificationsRejected(g: Graph, items: { key: string; reason: string }[]): Promise<void> {
  if (items.length === 0) return;
  await writeTx(g, (tx) => tx.run(CYPHER.reject, { items }));
}
