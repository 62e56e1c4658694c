/**
 * Merging two customer records into one, and taking a merge back.
 *
 * A merge is one transaction under both customers' locks (id order, graph/graph.ts): the merged
 * customer's payment methods, devices (login counts summed where both used one), addresses and
 * identifiers move to the survivor; the survivor's default stays the one default (the merged
 * record's becomes the default only where the survivor had none); lifetime value and payment
 * counts are summed exactly; the merged customer becomes a tombstone, status `merged` with
 * `merged_into`, that keeps its own profile and history; tombstones that pointed at it point at
 * the survivor (a chain A→B, B→C leaves A → C). A `CustomersMerged` event on each records the
 * manifest: everything that moved and every value that changed, with its value before.
 *
 * An unmerge (graph/identityUnmerge.ts) reads that manifest and, in one transaction with
 * `CustomersUnmerged` on each, moves back what the merge moved and restores what it changed,
 * except what was deleted or changed since: that is reported, never overwritten. What came to the
 * survivor after the merge (a card added, logins, payments) stays with the survivor. Where a
 * merged id leads now: graph/mergedRecords.ts.
 */
import neo4j, { type ManagedTransaction } from 'neo4j-driver';
import { lockCustomersTx } from './customers';
import { appendEvent } from './events';
import { listFactsTx } from './facts';
import { InvalidStateError, NotFoundError } from './errors';
import { readTx, writeTx, type Graph } from './graph';

export interface MovedPaymentMethod {
  id: string;
  /** The edge's is_default on the merged record, and after the merge on the survivor. */
  was_default: boolean;
  is_default: boolean;
}

/**
 * A login edge's count and times as they were (times as Neo4j's own strings, restored exactly).
 * The last IP address and user agent are personal data the event log never carries: the merge
 * keeps them on a `MERGED_LOGIN {merge_id}` edge from the tombstone to the device, where the undo
 * reads them (and an erasure deletes them with every edge of the tombstone).
 */
export interface LoginEdge {
  login_count: number;
  first_login: string | null;
  last_login: string | null;
}

export interface MovedDevice {
  id: string;
  /** The merged record's login edge, moved (survivor_before null) or added into the survivor's. */
  merged: LoginEdge;
  survivor_before: LoginEdge | null;
  survivor_after: LoginEdge;
}

export interface MovedAddress {
  id: string;
  type: string;
  /** The address's is_default before and after (false after when the survivor had a default of the type). */
  was_default: boolean;
  is_default: boolean;
  /** The survivor shipped to this very address already: only the merged record's edge went. */
  shared: boolean;
  first_shipped: string | null;
  last_shipped: string | null;
}

export interface MergeManifest {
  payment_methods: MovedPaymentMethod[];
  devices: MovedDevice[];
  addresses: MovedAddress[];
  identifiers: { id: string; type: string }[];
  /** Minor units of the reporting currency, exact. */
  ltv: { survivor_before: number; merged: number; survivor_after: number };
  succeeded_payments: { survivor_before: number; merged: number; survivor_after: number };
  /** The merged customer's status before it became a tombstone. */
  merged_status_before: string;
  /** Tombstones (of earlier merges) that pointed at the merged customer and now point at the survivor. */
  redirected: string[];
}

export interface MergeRequest {
  merge_id: string;
  survivor_id: string;
  merged_id: string;
  /** How the merge was decided: both customers consented, or ops decided alone. */
  decided_by: 'consent' | 'ops';
  requested_by: string | null;
  reason: string | null;
}

export interface MergeResult {
  /** merged: this call merged; already_merged: the same merge had committed before (a retry). */
  outcome: 'merged' | 'already_merged';
  survivor_id: string;
  merged_id: string;
  manifest: MergeManifest;
}

export interface NotRestored {
  kind: 'payment_method' | 'device' | 'address' | 'identifier' | 'ltv' | 'succeeded_payments';
  id: string | null;
  reason: string;
}

export interface UnmergeResult {
  outcome: 'unmerged' | 'already_unmerged';
  survivor_id: string;
  merged_id: string;
  restored: { payment_methods: string[]; devices: string[]; addresses: string[]; identifiers: string[] };
  not_restored: NotRestored[];
}

/** Why a customer cannot take part in a merge now, or null when it can. */
export function mergeRefusal(
  role: 'survivor' | 'merged',
  c: { id: string; status: string; merged_into: string | null } | null,
  options: { nameSurvivor?: boolean } = {},
): string | null {
  if (!c) return `customer ${role === 'survivor' ? 'to keep' : 'to merge'} was not found`;
  if (c.status === 'suspended') return `customer ${c.id} is suspended: a suspended customer is never merged`;
  if (c.status === 'erased') return `customer ${c.id} is erased`;
  // Where a merged record went is ops' to know: a customer's own request is not told.
  if (c.status === 'merged')
    return options.nameSurvivor === false
      ? `customer ${c.id} was merged into another record already`
      : `customer ${c.id} was merged into ${c.merged_into ?? 'another'} already`;
  return null;
}

const LOGIN_EDGE = (r: string) =>
  `{login_count: coalesce(${r}.login_count, 0), first_login: toString(${r}.first_login), ` +
  `last_login: toString(${r}.last_login)}`;

const CYPHER = {
  customers: `
    UNWIND $ids AS id
    MATCH (c:Customer {id: id})
    RETURN c.id AS id, c.status AS status, c.merged_into AS mergedInto,
           coalesce(c.ltv, 0) AS ltv, coalesce(c.succeeded_payments, 0) AS succeeded`,
  methods: `
    MATCH (s:Customer {id: $survivorId})
    OPTIONAL MATCH (s)-[d:HAS_PAYMENT_METHOD {is_default: true}]->(:PaymentMethod)
    WITH s, count(d) > 0 AS survivorHasDefault
    MATCH (:Customer {id: $mergedId})-[r:HAS_PAYMENT_METHOD]->(p:PaymentMethod)
    WITH s, survivorHasDefault, r, p, coalesce(r.is_default, false) AS wasDefault
    CREATE (s)-[n:HAS_PAYMENT_METHOD]->(p)
    SET n = properties(r), n.is_default = wasDefault AND NOT survivorHasDefault
    DELETE r
    RETURN p.id AS id, wasDefault, n.is_default AS isDefault`,
  devices: `
    MATCH (s:Customer {id: $survivorId})
    MATCH (m:Customer {id: $mergedId})-[r:LOGGED_IN_FROM]->(d:Device)
    OPTIONAL MATCH (s)-[sr:LOGGED_IN_FROM]->(d)
    WITH s, m, d, r, sr, ${LOGIN_EDGE('r')} AS merged,
         CASE WHEN sr IS NULL THEN null ELSE ${LOGIN_EDGE('sr')} END AS before
    CREATE (m)-[k:MERGED_LOGIN {merge_id: $mergeId}]->(d)
    SET k.last_seen_ip = r.last_seen_ip, k.last_seen_user_agent = r.last_seen_user_agent,
        k.survivor_ip_before = sr.last_seen_ip, k.survivor_user_agent_before = sr.last_seen_user_agent,
        // What each record had earned on the device (graph/devices.ts): an undo gives each its own back.
        k.trust_score = r.trust_score, k.survivor_trust_before = sr.trust_score
    FOREACH (_ IN CASE WHEN sr IS NULL THEN [1] ELSE [] END |
      CREATE (s)-[n:LOGGED_IN_FROM]->(d) SET n = properties(r))
    FOREACH (x IN CASE WHEN sr IS NULL THEN [] ELSE [sr] END |
      SET x.login_count = coalesce(x.login_count, 0) + coalesce(r.login_count, 0),
          x.first_login = CASE WHEN r.first_login < x.first_login THEN r.first_login ELSE x.first_login END,
          x.last_seen_ip = CASE WHEN r.last_login > x.last_login THEN r.last_seen_ip ELSE x.last_seen_ip END,
          x.last_seen_user_agent = CASE WHEN r.last_login > x.last_login THEN r.last_seen_user_agent
                                        ELSE x.last_seen_user_agent END,
          x.last_login = CASE WHEN r.last_login > x.last_login THEN r.last_login ELSE x.last_login END)
    DELETE r
    WITH s, d, merged, before
    MATCH (s)-[a:LOGGED_IN_FROM]->(d)
    RETURN d.id AS id, merged, before, ${LOGIN_EDGE('a')} AS after`,
  addresses: `
    MATCH (s:Customer {id: $survivorId})
    MATCH (m:Customer {id: $mergedId})-[r:SHIPPED_TO]->(a:Address)
    OPTIONAL MATCH (s)-[sr:SHIPPED_TO]->(a)
    WITH s, m, r, sr, a, coalesce(a.is_default, false) AS wasDefault,
         // A default flag lives on the address: one a third customer ships to as well keeps it (theirs).
         EXISTS { MATCH (s)-[:SHIPPED_TO]->(o:Address {type: a.type, is_default: true}) WHERE o <> a }
           AND NOT EXISTS { MATCH (a)<-[:SHIPPED_TO]-(x:Customer) WHERE x <> s AND x <> m } AS taken,
         toString(r.first_shipped) AS firstShipped, toString(r.last_shipped) AS lastShipped
    FOREACH (_ IN CASE WHEN sr IS NULL THEN [1] ELSE [] END | CREATE (s)-[n:SHIPPED_TO]->(a) SET n = properties(r))
    SET a.is_default = wasDefault AND NOT taken
    DELETE r
    RETURN a.id AS id, a.type AS type, wasDefault, a.is_default AS isDefault, sr IS NOT NULL AS shared,
           firstShipped, lastShipped`,
  identifiers: `
    MATCH (s:Customer {id: $survivorId})
    MATCH (:Customer {id: $mergedId})-[r:HAS_DIGITAL_IDENTIFIER]->(i:DigitalIdentifier)
    MERGE (s)-[:HAS_DIGITAL_IDENTIFIER]->(i)
    DELETE r
    RETURN i.id AS id, i.type AS type`,
  tombstone: `
    MATCH (s:Customer {id: $survivorId}), (m:Customer {id: $mergedId})
    SET s.ltv = coalesce(s.ltv, 0) + $ltv, s.succeeded_payments = coalesce(s.succeeded_payments, 0) + $succeeded,
        s.updated_at = datetime.transaction(),
        m.status = 'merged', m.merged_into = s.id, m.merged_at = datetime.transaction(), m.merge_id = $mergeId,
        m.ltv = 0, m.succeeded_payments = 0, m.updated_at = datetime.transaction(), m:Retired
    WITH s, m
    OPTIONAL MATCH (t:Customer {merged_into: m.id})
    SET t.merged_into = s.id
    RETURN collect(t.id) AS redirected`,
} as const;

/** A merge party as `readPair` reads it. */
export interface Row {
  id: string;
  status: string;
  merged_into: string | null;
  ltv: number;
  succeeded: number;
}

/** The customers of a merge as they stand, by id (each absent that does not exist). */
export async function readPair(tx: ManagedTransaction, ids: string[]): Promise<Map<string, Row>> {
  const res = await tx.run(CYPHER.customers, { ids });
  return new Map(
    res.records.map((r) => [
      r.get('id') as string,
      {
        id: r.get('id') as string,
        status: r.get('status') as string,
        merged_into: (r.get('mergedInto') as string | null) ?? null,
        ltv: Number(r.get('ltv')),
        succeeded: Number(r.get('succeeded')),
      },
    ]),
  );
}

const edge = (v: unknown): LoginEdge => {
  const e = v as Record<string, unknown>;
  return {
    login_count: Number(e.login_count ?? 0),
    first_login: (e.first_login as string | null) ?? null,
    last_login: (e.last_login as string | null) ?? null,
  };
};

/** The manifest of the CustomersMerged fact of this merge on the merged customer, if it committed. */
export async function mergedEvent(
  tx: ManagedTransaction,
  mergedId: string,
  mergeId: string,
): Promise<{ manifest: MergeManifest; survivor_id: string } | null> {
  const events = await listFactsTx(tx, mergedId, 'CustomersMerged', 50);
  const e = events.find((x) => x.payload.merge_id === mergeId && x.payload.merged_id === mergedId);
  return e
    ? { manifest: e.payload.manifest as unknown as MergeManifest, survivor_id: e.payload.survivor_id as string }
    : null;
}

/**
 * Merges `merged_id` into `survivor_id` in one transaction (module comment). A retry of a merge
 * that committed answers `already_merged` with its manifest; anything else that is not an active
 * pair is refused (InvalidStateError naming why) and nothing is written.
 */
export async function mergeCustomers(g: Graph, req: MergeRequest): Promise<MergeResult> {
  if (req.survivor_id === req.merged_id) throw new InvalidStateError('a customer cannot be merged into itself');
  return writeTx(g, async (tx) => {
    await lockCustomersTx(tx, [req.survivor_id, req.merged_id]);
    const pair = await readPair(tx, [req.survivor_id, req.merged_id]);
    const survivor = pair.get(req.survivor_id) ?? null;
    const merged = pair.get(req.merged_id) ?? null;
    if (merged?.status === 'merged' && merged.merged_into === req.survivor_id) {
      const done = await mergedEvent(tx, req.merged_id, req.merge_id);
      if (done) return { outcome: 'already_merged', merged_id: req.merged_id, ...done };
    }
    const refusal = mergeRefusal('survivor', survivor) ?? mergeRefusal('merged', merged);
    if (refusal || !survivor || !merged) throw new InvalidStateError(refusal ?? 'not found');
    const p = { survivorId: req.survivor_id, mergedId: req.merged_id, mergeId: req.merge_id };
    const methods = (await tx.run(CYPHER.methods, p)).records.map((r) => ({
      id: r.get('id') as string,
      was_default: r.get('wasDefault') as boolean,
      is_default: r.get('isDefault') as boolean,
    }));
    const devices = (await tx.run(CYPHER.devices, p)).records.map((r) => ({
      id: r.get('id') as string,
      merged: edge(r.get('merged')),
      survivor_before: r.get('before') === null ? null : edge(r.get('before')),
      survivor_after: edge(r.get('after')),
    }));
    const addresses = (await tx.run(CYPHER.addresses, p)).records.map((r) => ({
      id: r.get('id') as string,
      type: r.get('type') as string,
      was_default: r.get('wasDefault') as boolean,
      is_default: r.get('isDefault') as boolean,
      shared: r.get('shared') as boolean,
      first_shipped: (r.get('firstShipped') as string | null) ?? null,
      last_shipped: (r.get('lastShipped') as string | null) ?? null,
    }));
    const identifiers = (await tx.run(CYPHER.identifiers, p)).records.map((r) => ({
      id: r.get('id') as string,
      type: r.get('type') as string,
    }));
    const t = (
      await tx.run(CYPHER.tombstone, {
        ...p,
        // Integers, as every writer of LTV keeps them (a float would read as major units).
        ltv: neo4j.int(merged.ltv),
        succeeded: neo4j.int(merged.succeeded),
      })
    ).records[0];
    const manifest: MergeManifest = {
      payment_methods: methods,
      devices,
      addresses,
      identifiers,
      ltv: { survivor_before: survivor.ltv, merged: merged.ltv, survivor_after: survivor.ltv + merged.ltv },
      succeeded_payments: {
        survivor_before: survivor.succeeded,
        merged: merged.succeeded,
        survivor_after: survivor.succeeded + merged.succeeded,
      },
      merged_status_before: merged.status,
      redirected: (t?.get('redirected') as string[] | undefined) ?? [],
    };
    const payload = {
      merge_id: req.merge_id,
      survivor_id: req.survivor_id,
      merged_id: req.merged_id,
      decided_by: req.decided_by,
      requested_by: req.requested_by,
      reason: req.reason,
      manifest,
    };
    // The lock order: both customers are locked already, their events in id order.
    for (const id of [req.survivor_id, req.merged_id].sort()) await appendEvent(tx, 'CustomersMerged', id, payload);
    return { outcome: 'merged' as const, survivor_id: req.survivor_id, merged_id: req.merged_id, manifest };
  });
}

export interface MergeParty {
  id: string;
  status: string;
  merged_into: string | null;
}

/** The two customers of a merge as they are now (null for one that does not exist). */
export async function mergeParties(g: Graph, ids: [string, string]): Promise<(MergeParty | null)[]> {
  return readTx(g, async (tx) => {
    const pair = await readPair(tx, ids);
    return ids.map((id) => {
      const c = pair.get(id);
      return c ? { id: c.id, status: c.status, merged_into: c.merged_into } : null;
    });
  });
}

/**
 * Claims one of the merge proposals a customer may be party to in 24 hours, each asking someone
 * for consent: `proposed` counts those the customer's own token made, `asked` those that ask the
 * customer (whoever proposed them, ops aside), so that no one is sent consent requests without
 * end. The times of the last day live on the customer, counted and appended under its lock.
 * Answers null when claimed, else how many seconds until the oldest of the day's leaves the window.
 */
export async function claimMergeProposal(
  g: Graph,
  customerId: string,
  perDay: number,
  nowMs: number = Date.now(),
  as: 'proposed' | 'asked' = 'proposed',
): Promise<number | null> {
  const field = as === 'proposed' ? 'merge_proposals_at' : 'merge_requests_at';
  return writeTx(g, async (tx) => {
    await lockCustomersTx(tx, [customerId]);
    const stored = (
      await tx.run(`MATCH (c:Customer {id: $customerId}) RETURN coalesce(c.${field}, []) AS times`, {
        customerId,
      })
    ).records[0]?.get('times') as (number | { toNumber(): number })[] | undefined;
    if (!stored) throw new NotFoundError('Customer', customerId);
    const day = 86_400_000;
    const recent = stored.map((t) => (typeof t === 'number' ? t : t.toNumber())).filter((t) => t > nowMs - day);
    if (recent.length >= perDay) return Math.max(1, Math.ceil((Math.min(...recent) + day - nowMs) / 1000));
    await tx.run(`MATCH (c:Customer {id: $customerId}) SET c.${field} = $times`, {
      customerId,
      times: [...recent, nowMs].map((t) => neo4j.int(t)),
    });
    return null;
  });
}
