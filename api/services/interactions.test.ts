import { describe, expect, it } from 'vitest';
import type { Interaction, InteractionResult } from '../../graph/interactions';
import { DependencyUnavailableError } from '../../runtime/dependencies';
import { parseInteraction } from './interactions';
import { GroupCommit, laneOf, WriteLanes } from './writeLanes';
import { partitionOf } from '../../clients/kafka';

const base = {
  id: 'pay-1',
  customer_id: '6f1c2a52-8a3e-4b8e-9a47-0c3e8f1d2b11',
  occurred_at: '2026-11-23T10:00:00+01:00',
};
const payment = {
  ...base,
  type: 'payment',
  payment_method_id: '0b0d7c36-5d0e-4d55-8f2a-6f4d8e9b1a22',
  amount: 1250,
  currency: 'USD',
  outcome: 'succeeded',
};

describe('one interaction, parsed on its own', () => {
  it('names the wrong field under its index in the batch', () => {
    expect(parseInteraction({ ...payment, amount: 12.5 }, 3)).toMatchObject({ ok: false, field: 'data[3].amount' });
    expect(parseInteraction({ ...payment, outcome: 'maybe' }, 0)).toMatchObject({
      ok: false,
      field: 'data[0].outcome',
    });
    expect(parseInteraction({ ...base, type: 'refund' }, 1)).toMatchObject({ ok: false, field: 'data[1].type' });
    expect(parseInteraction({ ...base, type: 'login' }, 2)).toMatchObject({ ok: false, field: 'data[2].device' });
    expect(parseInteraction({ ...payment, surprise: 1 }, 4)).toMatchObject({
      ok: false,
      field: 'data[4].surprise',
      problem: 'unknown field',
    });
    expect(parseInteraction('not an object', 5)).toMatchObject({ ok: false, field: 'data[5]' });
  });

  it('refuses a time that is not a real RFC 3339 instant', () => {
    expect(parseInteraction({ ...payment, occurred_at: '2026-11-23 10:00' }, 0)).toMatchObject({
      ok: false,
      field: 'data[0].occurred_at',
    });
    expect(parseInteraction({ ...payment, occurred_at: '2026-11-23T10:00:00' }, 0)).toMatchObject({ ok: false });
  });

  it('takes each type with its own fields, text trimmed and the address type defaulted', () => {
    expect(parseInteraction(payment, 0)).toMatchObject({ ok: true, item: { amount: 1250, outcome: 'succeeded' } });
    expect(parseInteraction({ ...base, type: 'login', device: { fingerprint: ' fp-1 ', ip: '10.0.0.1' } }, 0)).toEqual({
      ok: true,
      item: { ...base, type: 'login', device: { fingerprint: 'fp-1', ip: '10.0.0.1' } },
    });
    const address = { street1: '1 Main St ', city: 'Springfield', zip_code: '12345', country: 'US' };
    expect(parseInteraction({ ...base, type: 'shipment', address }, 0)).toMatchObject({
      ok: true,
      item: { address: { street1: '1 Main St', type: 'shipping' } },
    });
  });
});

describe('group commit of interaction batches', () => {
  const batch = (name: string, n: number) =>
    Array.from({ length: n }, (_, k) => ({ ...payment, id: `${name}-${k}` }) as Interaction);
  /** A write that waits until released, recording what each call wrote. */
  function gatedWriter(fail: (items: Interaction[]) => boolean = () => false) {
    const calls: string[][] = [];
    const gates: (() => void)[] = [];
    const write = async (items: Interaction[]): Promise<InteractionResult[]> => {
      calls.push(items.map((i) => i.id));
      await new Promise<void>((release) => gates.push(release));
      if (fail(items)) throw new Error(`cannot write ${items[0]?.id}`);
      return items.map((i) => (i.id.endsWith('-0') ? { result: 'recorded' } : { result: 'duplicate' }));
    };
    const releaseAll = async () => {
      // Each release may let the next write start: release until nothing waits.
      for (let i = 0; i < 20; i++) {
        await new Promise((r) => setImmediate(r));
        gates.splice(0).forEach((release) => release());
      }
    };
    return { calls, write, releaseAll };
  }

  it('writes batches that arrive during a write together next, each answered with its own slice', async () => {
    const w = gatedWriter();
    const group = new GroupCommit(w.write, { maxItems: 1000, maxQueuedItems: 5000 });
    const a = group.submit(batch('a', 2));
    const b = group.submit(batch('b', 3));
    const c = group.submit(batch('c', 1));
    await w.releaseAll();
    expect(w.calls).toEqual([
      ['a-0', 'a-1'],
      ['b-0', 'b-1', 'b-2', 'c-0'],
    ]);
    expect(await a).toEqual([{ result: 'recorded' }, { result: 'duplicate' }]);
    expect(await b).toEqual([{ result: 'recorded' }, { result: 'duplicate' }, { result: 'duplicate' }]);
    expect(await c).toEqual([{ result: 'recorded' }]);
  });

  it('never puts more than the limit in one transaction', async () => {
    const w = gatedWriter();
    const group = new GroupCommit(w.write, { maxItems: 500, maxQueuedItems: 5000 });
    const all = [group.submit(batch('a', 100)), group.submit(batch('b', 300)), group.submit(batch('c', 300))];
    await w.releaseAll();
    await Promise.all(all);
    expect(w.calls.map((ids) => ids.length)).toEqual([100, 300, 300]);
  });

  it('writes a failed group again batch by batch, so one batch failing fails only its own caller', async () => {
    const w = gatedWriter((items) => items.some((i) => i.id.startsWith('bad')));
    const group = new GroupCommit(w.write, { maxItems: 1000, maxQueuedItems: 5000 });
    const first = group.submit(batch('a', 1));
    const good = group.submit(batch('b', 2));
    const bad = group.submit(batch('bad', 1)).catch((err: unknown) => err);
    await w.releaseAll();
    await expect(first).resolves.toHaveLength(1);
    await expect(good).resolves.toEqual([{ result: 'recorded' }, { result: 'duplicate' }]);
    expect(((await bad) as Error).message).toBe('cannot write bad-0');
    expect(w.calls).toEqual([['a-0'], ['b-0', 'b-1', 'bad-0'], ['b-0', 'b-1'], ['bad-0']]);
  });

  it('fails a whole group at once when Neo4j is unavailable, writing nothing again', async () => {
    const w = gatedWriter((items) => items.length > 1);
    const unavailable = async (items: Interaction[]) => {
      try {
        return await w.write(items);
      } catch {
        throw new DependencyUnavailableError('neo4j', 'down');
      }
    };
    const group = new GroupCommit(unavailable, { maxItems: 1000, maxQueuedItems: 5000 });
    const first = group.submit(batch('a', 1));
    const b = group.submit(batch('b', 1)).catch((err: unknown) => err);
    const c = group.submit(batch('c', 1)).catch((err: unknown) => err);
    await w.releaseAll();
    await first;
    expect(await b).toBeInstanceOf(DependencyUnavailableError);
    expect(await c).toBeInstanceOf(DependencyUnavailableError);
    expect(w.calls).toEqual([['a-0'], ['b-0', 'c-0']]);
  });

  it('drops a batch whose caller was answered before its turn, and refuses one past the queue limit', async () => {
    const w = gatedWriter();
    const group = new GroupCommit(w.write, { maxItems: 1000, maxQueuedItems: 3 });
    const first = group.submit(batch('a', 1));
    let waiting = true;
    const gaveUp = group.submit(batch('b', 2), () => waiting).catch((err: unknown) => err);
    const refused = group.submit(batch('c', 2)).catch((err: unknown) => err);
    const fits = group.submit(batch('d', 1));
    waiting = false;
    await w.releaseAll();
    await first;
    expect(await gaveUp).toBeInstanceOf(DependencyUnavailableError);
    expect(await refused).toBeInstanceOf(DependencyUnavailableError);
    await expect(fits).resolves.toHaveLength(1);
    expect(w.calls).toEqual([['a-0'], ['d-0']]);
  });
});

describe('write lanes: a batch split by customer over group commits', () => {
  const item = (customer: string, id: string) => ({ ...payment, customer_id: customer, id }) as Interaction;
  /** Customer ids that fall in lane 0 and lane 1 of two. */
  const inLane = (lane: number, n: number) => {
    const ids: string[] = [];
    for (let k = 0; ids.length < n; k++) if (laneOf(`cus-${k}`, 2) === lane) ids.push(`cus-${k}`);
    return ids;
  };

  it('puts a customer always in the same lane, and spreads customers over the lanes', () => {
    const counts = [0, 0, 0, 0];
    for (let k = 0; k < 4000; k++) {
      const lane = laneOf(`cus-${k}`, 4);
      expect(laneOf(`cus-${k}`, 4)).toBe(lane);
      counts[lane] = (counts[lane] ?? 0) + 1;
    }
    for (const n of counts) expect(n).toBeGreaterThan(800);
  });

  it('puts a customer in the lane whose number its Kafka partition has (the Java clients’ partitioner)', () => {
    // Kafka's own test vector: murmur2("21") = -973932308, made positive 1173551340.
    expect([laneOf('21', 6), laneOf('21', 7)]).toEqual([1173551340 % 6, 1173551340 % 7]);
    for (let k = 0; k < 200; k++) expect(laneOf(`cus-${k}`, 6)).toBe(partitionOf(`cus-${k}`, 6));
  });

  it('sends each customer’s items down its lane and answers them in the order sent', async () => {
    const [a, b] = inLane(0, 2) as [string, string];
    const [c] = inLane(1, 1) as [string];
    const written: string[][][] = [[], []];
    const lanes = [0, 1].map(
      (lane) =>
        new GroupCommit(
          async (items) => {
            written[lane]?.push(items.map((i) => `${i.customer_id}/${i.id}`));
            return items.map((i) => ({ result: i.id.startsWith('dup') ? 'duplicate' : 'recorded' }));
          },
          { maxItems: 1000, maxQueuedItems: 5000 },
        ),
    );
    const results = await new WriteLanes(lanes).submit([item(a, 'x'), item(c, 'dup-y'), item(b, 'z'), item(c, 'w')]);
    expect(results.map((r) => r.result)).toEqual(['recorded', 'duplicate', 'recorded', 'recorded']);
    expect(written).toEqual([[[`${a}/x`, `${b}/z`]], [[`${c}/dup-y`, `${c}/w`]]]);
  });

  it('fails the call when one lane fails, once the other lane has settled', async () => {
    const [a] = inLane(0, 1) as [string];
    const [c] = inLane(1, 1) as [string];
    let release: () => void = () => undefined;
    let slowDone = false;
    const slow = new GroupCommit(
      async (items) => {
        await new Promise<void>((r) => (release = r));
        slowDone = true;
        return items.map(() => ({ result: 'recorded' }));
      },
      { maxItems: 1000, maxQueuedItems: 5000 },
    );
    const failing = new GroupCommit(
      async () => {
        throw new DependencyUnavailableError('neo4j', 'down');
      },
      { maxItems: 1000, maxQueuedItems: 5000 },
    );
    let settled = false;
    const call = new WriteLanes([slow, failing])
      .submit([item(a, 'x'), item(c, 'y')])
      .catch((err: unknown) => err)
      .finally(() => (settled = true));
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false); // the failing lane has answered; the slow one has not
    release();
    expect(await call).toBeInstanceOf(DependencyUnavailableError);
    expect(slowDone).toBe(true);
  });

  it('admits a batch to all its lanes or to none, within one budget over the lanes', async () => {
    const [a, b] = inLane(0, 2) as [string, string];
    const [c] = inLane(1, 1) as [string];
    const gates: (() => void)[] = [];
    const written: string[] = [];
    const lane = () =>
      new GroupCommit(
        async (items) => {
          written.push(...items.map((i) => i.id));
          await new Promise<void>((release) => gates.push(release));
          return items.map(() => ({ result: 'recorded' }));
        },
        { maxItems: 1000, maxQueuedItems: 3 },
      );
    const lanes = new WriteLanes([lane(), lane()], 3);
    const first = lanes.submit([item(a, 'first')]); // being written: lane 0 busy, nothing queued
    const queued = lanes.submit([item(b, 'queued-1'), item(b, 'queued-2')]); // 2 wait in lane 0
    // Each lane alone would take its part (lane 0: 2 + 1 ≤ 3), but all lanes together would hold 4 > 3:
    // the batch is refused and neither part is queued.
    const refused = await lanes.submit([item(c, 'refused-c'), item(b, 'refused-b')]).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(DependencyUnavailableError);
    expect(lanes.queuedItems).toBe(2);
    expect(lanes.queuedPerLane()).toEqual([2, 0]);
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setImmediate(r));
      gates.splice(0).forEach((release) => release());
    }
    await Promise.all([first, queued]);
    expect(written.sort()).toEqual(['first', 'queued-1', 'queued-2']);
  });

  it('with one lane is that lane', async () => {
    const one = new GroupCommit(async (items) => items.map(() => ({ result: 'recorded' })), {
      maxItems: 1000,
      maxQueuedItems: 5000,
    });
    await expect(new WriteLanes([one]).submit([item('cus-1', 'x')])).resolves.toEqual([{ result: 'recorded' }]);
  });
});
