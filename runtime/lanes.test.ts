import fc from 'fast-check';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { inLanes } from './lanes';

describe('inLanes', () => {
  it('does every item once, starting them in order, never more than `lanes` at once', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(3)), fc.integer({ min: 0, max: 6 }), async (delays, lanes) => {
        const started: number[] = [];
        let running = 0;
        let most = 0;
        await inLanes(delays, lanes, async (delay, i) => {
          started.push(i);
          most = Math.max(most, ++running);
          await sleep(delay);
          running--;
        });
        expect(started).toEqual(delays.map((_, i) => i));
        expect(most).toBeLessThanOrEqual(Math.max(1, lanes));
        if (delays.length > 0) expect(most).toBeGreaterThanOrEqual(1);
      }),
      { numRuns: 60 },
    );
  });

  it('takes no item once `stop` says so; the lanes in flight finish theirs', async () => {
    const done: number[] = [];
    await inLanes(
      [0, 1, 2, 3, 4, 5, 6, 7],
      2,
      async (i) => {
        await sleep(1);
        done.push(i);
      },
      () => done.length >= 3,
    );
    expect(done.length).toBeGreaterThanOrEqual(3);
    expect(done.length).toBeLessThanOrEqual(4);
  });

  it('fails with the first failure, after the lanes in flight end, and starts nothing after it', async () => {
    const ended: number[] = [];
    const run = inLanes([0, 1, 2, 3, 4, 5], 2, async (i) => {
      if (i === 1) throw new Error('item 1 failed');
      await sleep(5);
      ended.push(i);
    });
    await expect(run).rejects.toThrow('item 1 failed');
    expect(ended).toEqual([0]);
  });

  it('fails when `stop` throws, only after the lanes in flight end', async () => {
    const ended: number[] = [];
    let asked = 0;
    const run = inLanes(
      [0, 1, 2, 3],
      2,
      async (i) => {
        await sleep(i === 0 ? 20 : 1);
        ended.push(i);
      },
      () => {
        if (++asked === 3) throw new Error('stop failed');
        return false;
      },
    );
    await expect(run).rejects.toThrow('stop failed');
    expect(ended.sort()).toEqual([0, 1]);
  });

  it('refuses a number of lanes that is not a number', async () => {
    await expect(inLanes([1], Number.NaN, async () => undefined)).rejects.toThrow(RangeError);
  });
});
