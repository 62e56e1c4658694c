/**
 * The payment-token key's online rotation (`npm run tokens:rotate`, docs/runbook.md): every
 * sealed token not yet under the ring's active key is opened with the key it names and sealed
 * again under the active one, in batches, while the api and the worker keep running.
 *
 * A sealed token lives in two places: the payment method (`PaymentMethod.token`) and the copy an
 * unanswered charge keeps until its answer (`ChargeAttempt.token`, dropped once answered); both
 * are sealed with the payment method's id as additional data. Each is rewritten only if it still
 * holds what was read (compare-and-set): a renewal or a charge that changed it meanwhile wins, and
 * what it wrote is under whichever key its process's ring had first, so a pass ends with a count
 * of what is left. Rotate once every process has the new ring (both keys, the new one first);
 * drop the old key only when the count says nothing is sealed under it.
 */
import neo4j from 'neo4j-driver';
import { leaderReadTx, lockNode, writeTx, type Graph } from './graph';
import { TokenCipher } from './tokens';

/** Where sealed tokens are kept, and the payment method id each was sealed with. */
const HOLDERS = [
  {
    label: 'PaymentMethod',
    method: 'n.id',
    ofCustomers: 'EXISTS { (c:Customer)-[:HAS_PAYMENT_METHOD]->(n) WHERE c.id IN $customers }',
  },
  { label: 'ChargeAttempt', method: 'n.payment_method_id', ofCustomers: 'n.customer_id IN $customers' },
] as const;

type Holder = (typeof HOLDERS)[number]['label'];

const scope = (h: (typeof HOLDERS)[number], scoped: boolean) => (scoped ? ` AND ${h.ofCustomers}` : '');

const page = (h: (typeof HOLDERS)[number], scoped: boolean) => `
  MATCH (n:${h.label}) WHERE n.id > $after AND n.token IS NOT NULL${scope(h, scoped)}
  RETURN n.id AS id, n.token AS token, ${h.method} AS method
  ORDER BY n.id LIMIT $batch`;

// The node's lock first (lockNode), then the comparison: Neo4j evaluates a WHERE on what is
// committed without locking, so a renewal or an answer committing between that read and the SET
// would otherwise be overwritten (an old card's token back, or a settled charge's token revived).
const reseal = (label: Holder) => `
  UNWIND $rows AS r
  MATCH (n:${label} {id: r.id})
  ${lockNode('n')}
  WITH n, r WHERE n.token = r.old
  SET n.token = r.new
  RETURN count(n) AS written`;

const census = (h: (typeof HOLDERS)[number], scoped: boolean) => `
  MATCH (n:${h.label}) WHERE n.token IS NOT NULL${scope(h, scoped)}
  WITH CASE WHEN n.token STARTS WITH 't2.' THEN split(n.token, '.')[1] ELSE '(unnamed)' END AS key
  RETURN key, count(*) AS tokens ORDER BY key`;

export interface RotationProgress {
  holder: Holder;
  scanned: number;
  resealed: number;
  /** Changed by a renewal or a charge between the read and the write: left to what changed it. */
  changedMeanwhile: number;
  /** Opened by no key in the ring (named a key it lacks, or damaged): left as they are, named. */
  unreadable: string[];
}

export interface RotationOptions {
  batchSize?: number;
  /** Only these customers' tokens: a canary before the whole graph (`--customer`). */
  customerIds?: string[];
  onBatch?: (p: RotationProgress) => void;
}

/** Re-seals every token not under the active key, batch by batch. */
export async function rotateTokens(g: Graph, options: RotationOptions = {}): Promise<RotationProgress[]> {
  const batch = options.batchSize ?? 500;
  const active = g.tokens.activeKeyId;
  const customers = options.customerIds ?? null;
  const out: RotationProgress[] = [];
  for (const h of HOLDERS) {
    const p: RotationProgress = { holder: h.label, scanned: 0, resealed: 0, changedMeanwhile: 0, unreadable: [] };
    let after = '';
    for (;;) {
      const rows = await leaderReadTx(g, async (tx) =>
        (await tx.run(page(h, customers !== null), { after, batch: neo4j.int(batch), customers })).records.map((r) => ({
          id: r.get('id') as string,
          token: r.get('token') as string,
          method: r.get('method') as string,
        })),
      );
      if (rows.length === 0) break;
      after = (rows[rows.length - 1] as { id: string }).id;
      p.scanned += rows.length;
      const changes: { id: string; old: string; new: string }[] = [];
      for (const row of rows) {
        if (TokenCipher.keyIdOf(row.token) === active) continue;
        let clear: string;
        try {
          clear = g.tokens.decrypt(row.token, row.method);
        } catch {
          p.unreadable.push(row.id);
          continue;
        }
        changes.push({ id: row.id, old: row.token, new: g.tokens.encrypt(clear, row.method) });
      }
      if (changes.length > 0) {
        const written = await writeTx(g, async (tx) => {
          const r = (await tx.run(reseal(h.label), { rows: changes })).records[0];
          return Number(r?.get('written') ?? 0);
        });
        p.resealed += written;
        p.changedMeanwhile += changes.length - written;
      }
      options.onBatch?.({ ...p, unreadable: [...p.unreadable] });
    }
    out.push(p);
  }
  return out;
}

/** How many sealed tokens each key holds, per place: what says an old key can go. */
export async function tokenKeyCensus(
  g: Graph,
  customerIds?: string[],
): Promise<Record<Holder, Record<string, number>>> {
  const out = {} as Record<Holder, Record<string, number>>;
  for (const h of HOLDERS) {
    out[h.label] = Object.fromEntries(
      await leaderReadTx(g, async (tx) =>
        (await tx.run(census(h, customerIds !== undefined), { customers: customerIds ?? [] })).records.map((r) => [
          r.get('key') as string,
          Number(r.get('tokens')),
        ]),
      ),
    );
  }
  return out;
}
