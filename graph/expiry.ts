/**
 * The graph side of the card-expiry scan. Candidates are active cards whose expiry month is at
 * most the end of the warning window; they are read in (expiry year, expiry month, id) order
 * straight off the `payment_method_expiry_scan` index, so every page is one range seek and a
 * cursor never skips or repeats a card, even while earlier cards change status.
 */
import neo4j from 'neo4j-driver';
import { appendEvents } from './events';
import { readTx, writeTx, type Graph } from './graph';
import { defaultChangedEvent, replaceUnusableDefaultsTx } from './walletDefaults';

export interface ExpiryCandidate {
  payment_method_id: string;
  /** null for a method no customer holds (left alone). */
  customer_id: string | null;
  customer_status: string | null;
  is_default: boolean;
  expiry_year: number;
  expiry_month: number;
  brand: string | null;
  last_four: string | null;
  /** The most urgent warning recorded for this card, `<expiry month>:<stage>` (e.g. `2027-01:30`). */
  expiry_warning: string | null;
}

/** A slice of the id space, [from, to): scans run several at once. to null: no upper bound. */
export interface IdRange {
  from: string;
  to: string | null;
}

export const ALL_IDS: IdRange = { from: '', to: null };

export interface ExpiryPosition {
  year: number;
  month: number;
  /** The last id read in that month ('' before the first); null once the month is read to its end. */
  id: string | null;
}

/** What the scan needs of a candidate card and its holder. */
const CANDIDATE = `
    OPTIONAL MATCH (c:Customer)-[r:HAS_PAYMENT_METHOD]->(p)
    RETURN p.id AS payment_method_id, c.id AS customer_id, c.status AS customer_status,
           coalesce(r.is_default, false) AS is_default,
           p.expiry_year AS expiry_year, p.expiry_month AS expiry_month, p.brand AS brand, p.last_four AS last_four,
           p.expiry_warning AS expiry_warning`;

/** Above every id (ids are UUIDs; any string sorts below this). */
const END_OF_IDS = '\u{10FFFF}';

// Index order: ORDER BY on the index's properties lets the planner stop after $limit entries,
// and the id bounds make each page one range seek inside one expiry month.
const CYPHER = {
  pageInMonth: `
    MATCH (p:PaymentMethod)
    WHERE p.status = 'active' AND p.expiry_year = $year AND p.expiry_month = $month
      AND p.id > $after AND p.id < $before
    WITH p ORDER BY p.status, p.expiry_year, p.expiry_month, p.id LIMIT $limit
    ${CANDIDATE}`,
  pageInMonthFrom: `
    MATCH (p:PaymentMethod)
    WHERE p.status = 'active' AND p.expiry_year = $year AND p.expiry_month = $month
      AND p.id >= $after AND p.id < $before
    WITH p ORDER BY p.status, p.expiry_year, p.expiry_month, p.id LIMIT $limit
    ${CANDIDATE}`,
  // The next month after (year, month) holding an active card: two seeks that each start exactly there.
  nextMonth: `
    CALL () {
      MATCH (p:PaymentMethod)
      WHERE p.status = 'active' AND p.expiry_year = $year AND p.expiry_month > $month AND p.id IS NOT NULL
      RETURN p.expiry_year AS year, p.expiry_month AS month ORDER BY p.status, p.expiry_year, p.expiry_month LIMIT 1
      UNION ALL
      MATCH (p:PaymentMethod)
      WHERE p.status = 'active' AND p.expiry_year > $year AND p.expiry_month IS NOT NULL AND p.id IS NOT NULL
      RETURN p.expiry_year AS year, p.expiry_month AS month ORDER BY p.status, p.expiry_year, p.expiry_month LIMIT 1
    }
    RETURN year, month ORDER BY year, month LIMIT 1`,
  // A settled warning is remembered on the card, so the next day's read already knows it.
  markWarned: `
    UNWIND $cards AS card
    MATCH (p:PaymentMethod {id: card.id})
    SET p.expiry_warning = card.warning`,
  // Customers' locks first, in id order (the lock order every writer keeps: graph/graph.ts;
  // ORDER BY is eager, so every lock is taken after the sort), then each card's. The status is
  // read under the card's lock, so two scans never both expire it; a card whose expiry changed
  // since it was read is left alone.
  expire: `
    UNWIND $cards AS card
    MATCH (c:Customer)-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod {id: card.id})
    WITH c, p, card ORDER BY c.id, p.id
    SET c.updated_at = datetime.transaction()
    WITH c, p, card
    SET p.updated_at = datetime.transaction()
    WITH c, p, card
    WHERE p.status = 'active' AND p.expiry_year = card.year AND p.expiry_month = card.month
    SET p.status = 'expired'
    RETURN c.id AS customer_id, p.id AS payment_method_id, p.expiry_year AS expiry_year,
           p.expiry_month AS expiry_month`,
} as const;

const toNumber = (v: unknown): number => (neo4j.isInt(v) ? v.toNumber() : (v as number));

/**
 * Reads up to `limit` candidates with ids in `ids` after `from`, in cursor order, up to and
 * including the month `end`. Returns them with the position to continue from, or null once
 * the window is read.
 */
export async function readExpiryCandidates(
  g: Graph,
  from: ExpiryPosition | null,
  end: { year: number; month: number },
  limit: number,
  ids: IdRange = ALL_IDS,
): Promise<{ cards: ExpiryCandidate[]; next: ExpiryPosition | null }> {
  return readTx(g, async (tx) => {
    const cards: ExpiryCandidate[] = [];
    let pos: ExpiryPosition | null = from;
    const pastEnd = (p: { year: number; month: number }): boolean => p.year * 12 + p.month > end.year * 12 + end.month;
    while (cards.length < limit) {
      if (pos === null || pos.id === null) {
        // Find the next month that holds an active card.
        const after = pos ?? { year: 0, month: 0 };
        const rec = (await tx.run(CYPHER.nextMonth, { year: neo4j.int(after.year), month: neo4j.int(after.month) }))
          .records[0];
        if (!rec) return { cards, next: null };
        const month = { year: toNumber(rec.get('year')), month: toNumber(rec.get('month')) };
        if (pastEnd(month)) return { cards, next: null };
        pos = { ...month, id: '' };
      }
      const want = limit - cards.length;
      const fresh = !pos.id;
      const after = fresh ? ids.from : (pos.id as string);
      const res = await tx.run(fresh ? CYPHER.pageInMonthFrom : CYPHER.pageInMonth, {
        year: neo4j.int(pos.year),
        month: neo4j.int(pos.month),
        after,
        before: ids.to ?? END_OF_IDS,
        limit: neo4j.int(want),
      });
      let last = after;
      for (const r of res.records) {
        const card: ExpiryCandidate = {
          payment_method_id: r.get('payment_method_id') as string,
          customer_id: r.get('customer_id') as string | null,
          customer_status: r.get('customer_status') as string | null,
          is_default: r.get('is_default') as boolean,
          expiry_year: toNumber(r.get('expiry_year')),
          expiry_month: toNumber(r.get('expiry_month')),
          brand: r.get('brand') as string | null,
          last_four: r.get('last_four') as string | null,
          expiry_warning: (r.get('expiry_warning') as string | null) ?? null,
        };
        cards.push(card);
        if (card.payment_method_id > last) last = card.payment_method_id;
      }
      // A short page means the month is done: the next loop looks for the following month.
      pos = { year: pos.year, month: pos.month, id: res.records.length < want ? null : last };
    }
    return { cards, next: pos };
  });
}

/**
 * Marks cards past their expiry month `expired`, each with PaymentMethodStatusChanged, in one
 * transaction; an expired default is replaced as a status change replaces it
 * (replaceUnusableDefaultsTx), with DefaultPaymentMethodChanged. Cards no longer active (a
 * re-run, another scan, a customer's change) are skipped.
 */
export async function expireCards(
  g: Graph,
  cards: { payment_method_id: string; expiry_year: number; expiry_month: number }[],
  asOf: string,
): Promise<{ customer_id: string; payment_method_id: string }[]> {
  if (cards.length === 0) return [];
  return writeTx(g, async (tx) => {
    const res = await tx.run(CYPHER.expire, {
      cards: cards.map((c) => ({
        id: c.payment_method_id,
        year: neo4j.int(c.expiry_year),
        month: neo4j.int(c.expiry_month),
      })),
    });
    const changed = res.records.map((r) => ({
      customer_id: r.get('customer_id') as string,
      payment_method_id: r.get('payment_method_id') as string,
      expiry: `${toNumber(r.get('expiry_year'))}-${String(toNumber(r.get('expiry_month'))).padStart(2, '0')}`,
    }));
    // An expired default gives way to the customer's most recently used active method (or none).
    const moved = new Map(
      (await replaceUnusableDefaultsTx(tx, changed)).map((m) => [m.from, defaultChangedEvent(m, 'expired')]),
    );
    await appendEvents(
      tx,
      changed.flatMap((c) => [
        {
          type: 'PaymentMethodStatusChanged' as const,
          customerId: c.customer_id,
          payload: {
            payment_method_id: c.payment_method_id,
            from: 'active',
            to: 'expired',
            reason: `card expired at the end of ${c.expiry} (expiry scan as of ${asOf})`,
          },
        },
        ...(moved.has(c.payment_method_id) ? [moved.get(c.payment_method_id)!] : []),
      ]),
    );
    return changed.map(({ customer_id, payment_method_id }) => ({ customer_id, payment_method_id }));
  });
}

/**
 * Remembers on each card the most urgent warning settled for it (`<expiry month>:<stage>`), so
 * later scans skip it without a lookup. The notification claims stay the arbiter of
 * exactly-once; this only spares the work of asking them again.
 */
export async function markCardsWarned(
  g: Graph,
  cards: { payment_method_id: string; warning: string }[],
): Promise<void> {
  if (cards.length === 0) return;
  await writeTx(g, (tx) =>
    tx.run(CYPHER.markWarned, { cards: cards.map((c) => ({ id: c.payment_method_id, warning: c.warning })) }),
  );
}
