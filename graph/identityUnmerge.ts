/**
 * Taking a merge back (graph/identityMerge.ts merges): in one transaction under both customers'
 * locks, with `CustomersUnmerged` on each, the merge's manifest is read and what it moved goes
 * back, what it changed is restored, except what was deleted or changed since: that is reported,
 * never overwritten. What came to the survivor after the merge stays with the survivor.
 */
import neo4j, { type ManagedTransaction } from 'neo4j-driver';
import { lockCustomersTx } from './customers';
import { INITIAL_TRUST_SCORE } from './devices';
import { InvalidStateError, NotFoundError } from './errors';
import { appendEvent } from './events';
import { listFactsTx } from './facts';
import { writeTx, type Graph } from './graph';
import { mergedEvent, readPair, type MergeManifest, type NotRestored, type UnmergeResult } from './identityMerge';

const UNDO = {
  // A moved method goes back unless it left the survivor or its default flag changed since.
  methods: `
    UNWIND $methods AS m
    MATCH (old:Customer {id: $mergedId})
    OPTIONAL MATCH (s:Customer {id: $survivorId})-[r:HAS_PAYMENT_METHOD]->(p:PaymentMethod {id: m.id})
    WITH old, m, r, p,
         CASE WHEN p IS NULL THEN 'it was removed or moved since the merge'
              WHEN coalesce(r.is_default, false) <> m.is_default THEN 'the survivor changed its default since the merge'
         END AS refusal
    FOREACH (_ IN CASE WHEN refusal IS NULL THEN [1] ELSE [] END |
      CREATE (old)-[n:HAS_PAYMENT_METHOD]->(p) SET n = properties(r), n.is_default = m.was_default
      DELETE r)
    RETURN m.id AS id, refusal`,
  devices: `
    UNWIND $devices AS v
    MATCH (old:Customer {id: $mergedId})
    OPTIONAL MATCH (s:Customer {id: $survivorId})-[r:LOGGED_IN_FROM]->(d:Device {id: v.id})
    OPTIONAL MATCH (old)-[k:MERGED_LOGIN {merge_id: $mergeId}]->(:Device {id: v.id})
    WITH old, v, r, d, k, CASE WHEN r IS NULL THEN 'the survivor no longer logs in from it' END AS refusal
    FOREACH (_ IN CASE WHEN refusal IS NULL THEN [1] ELSE [] END |
      CREATE (old)-[n:LOGGED_IN_FROM]->(d)
      SET n.login_count = v.merged.login_count, n.first_login = datetime(v.merged.first_login),
          n.last_login = datetime(v.merged.last_login), n.last_seen_ip = k.last_seen_ip,
          n.last_seen_user_agent = k.last_seen_user_agent, n.trust_score = k.trust_score)
    WITH old, v, r, d, k, refusal,
         CASE WHEN r IS NULL THEN 0 ELSE coalesce(r.login_count, 0) - v.merged.login_count END AS remaining,
         r IS NOT NULL AND toString(r.last_login) = v.survivor_after.last_login AS noLoginSince
    // The survivor keeps its own logins and those since the merge; times it had before come back.
    FOREACH (x IN CASE WHEN refusal IS NULL AND remaining <= 0 AND v.survivor_before IS NULL THEN [r] ELSE [] END |
      DELETE x)
    FOREACH (x IN CASE WHEN refusal IS NULL AND (remaining > 0 OR v.survivor_before IS NOT NULL) THEN [r] ELSE [] END |
      SET x.login_count = CASE WHEN remaining > 0 THEN remaining ELSE 0 END,
          x.first_login = CASE WHEN v.survivor_before IS NULL THEN x.first_login
                               ELSE datetime(v.survivor_before.first_login) END,
          x.last_seen_ip = CASE WHEN noLoginSince AND v.survivor_before IS NOT NULL
                                THEN k.survivor_ip_before ELSE x.last_seen_ip END,
          x.last_seen_user_agent = CASE WHEN noLoginSince AND v.survivor_before IS NOT NULL
                                THEN k.survivor_user_agent_before ELSE x.last_seen_user_agent END,
          x.last_login = CASE WHEN noLoginSince AND v.survivor_before IS NOT NULL
                              THEN datetime(v.survivor_before.last_login) ELSE x.last_login END,
          // The survivor's own earned trust back; an edge it had only through the merge starts again.
          x.trust_score = CASE WHEN v.survivor_before IS NOT NULL THEN coalesce(k.survivor_trust_before, $initial)
                               ELSE $initial END)
    FOREACH (y IN CASE WHEN k IS NULL THEN [] ELSE [k] END | DELETE y)
    RETURN v.id AS id, refusal`,
  addresses: `
    UNWIND $addresses AS v
    MATCH (old:Customer {id: $mergedId})
    OPTIONAL MATCH (s:Customer {id: $survivorId})-[r:SHIPPED_TO]->(a:Address {id: v.id})
    WITH old, v, r, a,
         CASE WHEN a IS NULL THEN 'it was removed since the merge'
              WHEN coalesce(a.is_default, false) <> v.is_default THEN 'its default flag changed since the merge'
         END AS refusal
    FOREACH (_ IN CASE WHEN refusal IS NULL THEN [1] ELSE [] END |
      CREATE (old)-[n:SHIPPED_TO]->(a)
      SET n.first_shipped = datetime(v.first_shipped), n.last_shipped = datetime(v.last_shipped),
          a.is_default = v.was_default)
    FOREACH (x IN CASE WHEN refusal IS NULL AND NOT v.shared THEN [r] ELSE [] END | DELETE x)
    RETURN v.id AS id, refusal`,
  identifiers: `
    UNWIND $identifiers AS v
    MATCH (old:Customer {id: $mergedId})
    OPTIONAL MATCH (s:Customer {id: $survivorId})-[r:HAS_DIGITAL_IDENTIFIER]->(i:DigitalIdentifier {id: v.id})
    WITH old, v, r, i, CASE WHEN i IS NULL THEN 'it was removed since the merge' END AS refusal
    FOREACH (_ IN CASE WHEN refusal IS NULL THEN [1] ELSE [] END | CREATE (old)-[:HAS_DIGITAL_IDENTIFIER]->(i) DELETE r)
    RETURN v.id AS id, refusal`,
  customers: `
    MATCH (s:Customer {id: $survivorId}), (m:Customer {id: $mergedId})
    SET s.ltv = $survivorLtv, s.succeeded_payments = $survivorSucceeded, s.updated_at = datetime.transaction(),
        m.status = $status, m.ltv = $mergedLtv, m.succeeded_payments = $mergedSucceeded,
        m.updated_at = datetime.transaction()
    REMOVE m.merged_into, m.merged_at, m.merge_id, m:Retired
    WITH s, m
    UNWIND (CASE WHEN size($redirected) = 0 THEN [null] ELSE $redirected END) AS tid
    OPTIONAL MATCH (t:Customer {id: tid, merged_into: s.id})
    SET t.merged_into = m.id`,
} as const;

/** Moves back what merge `mergeId` moved (its manifest `m`): the ids restored, and what was not, with why. */
async function restoreMovedTx(tx: ManagedTransaction, p: Record<string, unknown>, mergeId: string, m: MergeManifest) {
  const notRestored: NotRestored[] = [];
  const restoredOf = async (kind: NotRestored['kind'], cypher: string, params: Record<string, unknown>) => {
    const ok: string[] = [];
    for (const r of (await tx.run(cypher, { ...p, ...params })).records) {
      const refusal = r.get('refusal') as string | null;
      if (refusal) notRestored.push({ kind, id: r.get('id') as string, reason: refusal });
      else ok.push(r.get('id') as string);
    }
    return ok;
  };
  const restored = {
    payment_methods: await restoredOf('payment_method', UNDO.methods, { methods: m.payment_methods }),
    devices: await restoredOf('device', UNDO.devices, { devices: m.devices, mergeId, initial: INITIAL_TRUST_SCORE }),
    addresses: await restoredOf('address', UNDO.addresses, { addresses: m.addresses }),
    identifiers: await restoredOf('identifier', UNDO.identifiers, { identifiers: m.identifiers }),
  };
  return { restored, notRestored };
}

/**
 * Takes back the merge `merge_id` of `merged_id` into `survivor_id` (module comment). Refused when
 * the merged customer is not that merge's tombstone any more, or the survivor has been merged or
 * erased since (undo the later merge first).
 */
export async function unmergeCustomers(
  g: Graph,
  req: { merge_id: string; survivor_id: string; merged_id: string; requested_by: string | null; reason: string },
): Promise<UnmergeResult> {
  return writeTx(g, async (tx) => {
    await lockCustomersTx(tx, [req.survivor_id, req.merged_id]);
    const pair = await readPair(tx, [req.survivor_id, req.merged_id]);
    const survivor = pair.get(req.survivor_id);
    const merged = pair.get(req.merged_id);
    if (!survivor || !merged) throw new NotFoundError('Customer', !survivor ? req.survivor_id : req.merged_id);
    const done = await mergedEvent(tx, req.merged_id, req.merge_id);
    if (!done) throw new InvalidStateError(`merge ${req.merge_id} of customer ${req.merged_id} never committed`);
    const base = { survivor_id: req.survivor_id, merged_id: req.merged_id };
    const unmerges = await listFactsTx(tx, req.merged_id, 'CustomersUnmerged', 50);
    const undone = unmerges.find((e) => e.payload.merge_id === req.merge_id);
    if (undone)
      return {
        outcome: 'already_unmerged',
        ...base,
        restored: undone.payload.restored as unknown as UnmergeResult['restored'],
        not_restored: undone.payload.not_restored as unknown as NotRestored[],
      };
    if (survivor.status === 'merged')
      throw new InvalidStateError(
        `customer ${req.survivor_id} was merged into ${survivor.merged_into ?? 'another'} since: undo that merge first`,
      );
    if (survivor.status === 'erased') throw new InvalidStateError(`customer ${req.survivor_id} was erased since`);
    if (merged.status !== 'merged' || merged.merged_into !== req.survivor_id)
      throw new InvalidStateError(`customer ${req.merged_id} is not merged into ${req.survivor_id} any more`);
    const m = done.manifest;
    const p = { survivorId: req.survivor_id, mergedId: req.merged_id };
    const { restored, notRestored } = await restoreMovedTx(tx, p, req.merge_id, m);
    // Exact: the survivor keeps what it had and what came since; a refund since may leave less.
    const back = (kind: 'ltv' | 'succeeded_payments', now: number, part: number): number => {
      if (now >= part) return now - part;
      notRestored.push({
        kind,
        id: null,
        reason: `the survivor holds ${now} now, less than the ${part} the merge added: the survivor keeps 0`,
      });
      return 0;
    };
    await tx.run(UNDO.customers, {
      ...p,
      survivorLtv: neo4j.int(back('ltv', survivor.ltv, m.ltv.merged)),
      survivorSucceeded: neo4j.int(back('succeeded_payments', survivor.succeeded, m.succeeded_payments.merged)),
      mergedLtv: neo4j.int(m.ltv.merged),
      mergedSucceeded: neo4j.int(m.succeeded_payments.merged),
      status: m.merged_status_before,
      redirected: m.redirected,
    });
    const payload = {
      merge_id: req.merge_id,
      ...base,
      requested_by: req.requested_by,
      reason: req.reason,
      restored,
      not_restored: notRestored,
    };
    for (const id of [req.survivor_id, req.merged_id].sort()) await appendEvent(tx, 'CustomersUnmerged', id, payload);
    return { outcome: 'unmerged' as const, ...base, restored, not_restored: notRestored };
  });
}
