/**
 * The tail's rule (api/invalidations.ts) against an adversary: a log of numbered events, sent in
 * batches as sequencers send them, with messages lost, sent twice, and crossing (two sequencers'
 * sends landing out of order), and numbers pruned from the log. Whatever happens, every number in
 * the log reaches the cache, in order, before the cache is told the log is drained through it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SequencedEvent, SequencedRead } from '../graph/sequencer';
import { createLogger } from '../runtime/logger';
import type { InvalidationMessage } from '../graph/invalidationMessage';
import { InvalidationTail } from './invalidations';
import type { CacheEvent } from './readCacheEvents';

const logger = createLogger('invalidations-test', 'silent');

function event(n: number): SequencedEvent {
  return { log_seq: n, type: 'CustomerSuspended', customer_id: `c${n % 7}`, customer_seq: n, payload: null };
}

/** The graph's side: the log as numbered, minus what was pruned, read by number as readSequenced reads it. */
function logReader(through: () => number, pruned: Set<number>, reads: { from: number; to: number }[]) {
  return async (from: number, to: number, limit: number): Promise<SequencedRead> => {
    reads.push({ from, to });
    const last = Math.min(to, through());
    const events: SequencedEvent[] = [];
    let n = from;
    for (; n <= last && events.length < limit; n++) if (!pruned.has(n)) events.push(event(n));
    const coveredThrough = events.length >= limit ? (events.at(-1)?.log_seq ?? from - 1) : last;
    return { events, coveredThrough, state: { epoch: 0, through: through(), drainedAt: 1 } };
  };
}

/** What the cache was told, in order. */
function recorder() {
  const seen: { kind: 'event' | 'polled' | 'reset'; n: number }[] = [];
  return {
    seen,
    cache: {
      apply: (events: readonly CacheEvent[]) => {
        for (const e of events) seen.push({ kind: 'event', n: (e as SequencedEvent).log_seq });
      },
      polled: (at: number) => void seen.push({ kind: 'polled', n: at }),
      reset: () => void seen.push({ kind: 'reset', n: 0 }),
    },
  };
}

/** A tail over a log numbered through `through()`, with what it tells the cache and what it reads. */
function tailOver(through: () => number, options: { maxGap?: number; pageSize?: number; pruned?: Set<number> } = {}) {
  const { seen, cache } = recorder();
  const reads: { from: number; to: number }[] = [];
  const settings = { maxGap: options.maxGap ?? 100, pageSize: options.pageSize ?? 10 };
  const read = logReader(through, options.pruned ?? new Set(), reads);
  return { seen, reads, tail: new InvalidationTail({} as never, cache, settings, logger, read) };
}

describe('the invalidation tail', () => {
  it('places itself at the first message and takes the next in order', async () => {
    const { seen, reads, tail } = tailOver(() => 5);
    await tail.receive({ epoch: 0, through: 3, drained_at: 10, events: [event(3)] });
    expect(tail.position).toBe(4);
    await tail.receive({ epoch: 0, through: 5, drained_at: 11, events: [event(4), event(5)] });
    // Placed now (its origin: no fill from before is kept), not at the message's drain.
    expect(seen).toEqual([
      { kind: 'polled', n: expect.any(Number) as number },
      { kind: 'event', n: 4 },
      { kind: 'event', n: 5 },
      { kind: 'polled', n: 11 },
    ]);
    expect(reads).toEqual([]);
  });

  it('reads a hole from the graph before it goes on, and passes a message it has seen', async () => {
    const { seen, reads, tail } = tailOver(() => 9);
    await tail.receive({ epoch: 0, through: 2, drained_at: null, events: [] });
    // 3..5 were lost (a sequencer died after numbering them); 6 arrives.
    await tail.receive({ epoch: 0, through: 6, drained_at: null, events: [event(6)] });
    await tail.receive({ epoch: 0, through: 6, drained_at: null, events: [event(5), event(6)] });
    // The log is numbered through 9 with nothing sent for 7..9: the tick says so.
    await tail.receive({ epoch: 0, through: 9, drained_at: 12, events: [] });
    expect(seen.filter((s) => s.kind === 'event').map((s) => s.n)).toEqual([3, 4, 5, 6, 7, 8, 9]);
    expect(reads).toEqual([
      { from: 3, to: 5 },
      { from: 7, to: 9 },
    ]);
    expect(seen.at(-1)).toEqual({ kind: 'polled', n: 12 });
  });

  it('empties the cache for a hole wider than it reads, and for a restored log', async () => {
    const { seen, reads, tail } = tailOver(() => 500, { maxGap: 10 });
    await tail.receive({ epoch: 0, through: 1, drained_at: null, events: [] });
    await tail.receive({ epoch: 0, through: 100, drained_at: null, events: [] });
    expect(seen.slice(1)).toEqual([{ kind: 'reset', n: 0 }]);
    expect(tail.position).toBe(101);
    // A message sent twice (or crossing a later one) is passed.
    await tail.receive({ epoch: 0, through: 40, drained_at: null, events: [event(40)] });
    expect(seen).toHaveLength(2);
    // A restore brought back a log numbered through 40, in a new epoch; a late message of the old one says nothing.
    await tail.receive({ epoch: 7, through: 40, drained_at: null, events: [] });
    expect(seen.at(-1)).toEqual({ kind: 'reset', n: 0 });
    expect(tail.position).toBe(41);
    await tail.receive({ epoch: 0, through: 200, drained_at: null, events: [] });
    expect(tail.position).toBe(41);
    expect(reads).toEqual([]);
  });

  it('never tells the cache it is current while a number the leader has not given is missing', async () => {
    const { seen, tail } = tailOver(() => 3);
    await tail.receive({ epoch: 0, through: 2, drained_at: null, events: [] });
    // A message names 5, but the leader this replica reads has given only 3 (never the case on
    // one leader; a promoted member behind it could be): refused, not passed.
    await expect(tail.receive({ epoch: 0, through: 5, drained_at: 99, events: [] })).rejects.toThrow(
      /no event numbered 4/,
    );
    expect(seen.some((s) => s.kind === 'polled' && s.n === 99)).toBe(false);
    expect(tail.position).toBe(4);
  });

  it('delivers every number in order whatever is lost, sent twice, crossed or pruned', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.constantFrom('send', 'lose', 'twice', 'cross'), { minLength: 40, maxLength: 40 }),
        fc.array(fc.integer({ min: 2, max: 150 }), { maxLength: 10 }),
        fc.integer({ min: 1, max: 8 }),
        async (batches, fates, prunedList, pageSize) => {
          const total = batches.reduce((a, b) => a + b, 0);
          const pruned = new Set(prunedList.filter((n) => n <= total));
          let numbered = 1;
          const { seen, tail } = tailOver(() => numbered, { maxGap: 1000, pageSize, pruned });
          // The first message places the tail at 1 (number 1 came before it: the cache was empty).
          await tail.receive({ epoch: 0, through: 1, drained_at: null, events: [] });
          const messages: InvalidationMessage[] = [];
          for (const size of batches) {
            const events = Array.from({ length: size }, (_, i) => event(numbered + 1 + i)).filter(
              (e) => !pruned.has(e.log_seq),
            );
            numbered += size;
            messages.push({ epoch: 0, through: numbered, drained_at: null, events });
          }
          const sent: InvalidationMessage[] = [];
          messages.forEach((m, i) => {
            const fate = fates[i % fates.length];
            if (fate === 'lose') return;
            if (fate === 'twice') sent.push(m, m);
            else if (fate === 'cross' && sent.length > 0) sent.splice(sent.length - 1, 0, m);
            else sent.push(m);
          });
          for (const m of sent) await tail.receive(m);
          // The last tick: the log drained at its end.
          await tail.receive({ epoch: 0, through: numbered, drained_at: 777, events: [] });
          const order = seen.filter((s) => s.kind === 'event').map((s) => s.n);
          // Each number at most once, in order, none missing but the pruned ones; told current last.
          const expected = Array.from({ length: numbered - 1 }, (_, i) => i + 2).filter((n) => !pruned.has(n));
          expect(order).toEqual(expected);
          expect(seen.at(-1)).toEqual({ kind: 'polled', n: 777 });
          expect(seen.some((s) => s.kind === 'reset')).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });
});
