/** A call's wait within its request's budget: its own error must reach the caller before the net's 503. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RequestContext } from '../runtime/requestContext';
import { waitWithinBudget, withinBudget } from './deadlines';
import type { ApiDeps } from './deps';

afterEach(() => {
  vi.useRealTimers();
});

describe('a call’s wait within the request’s budget', () => {
  it('is what was asked while the budget has room, what is left once not, and none when out of time', async () => {
    vi.useFakeTimers();
    const requests = new RequestContext();
    const deps = {
      limits: { requestDeadlineMs: 2000, waitTimeoutMs: 60_000 },
      requests,
      logger: { debug: () => undefined, error: () => undefined },
    } as unknown as ApiDeps;
    const seen: number[] = [];
    await requests.run({ requestId: 'r-1' }, () =>
      withinBudget(deps, false, async () => {
        seen.push(waitWithinBudget(deps, 1000), waitWithinBudget(deps, 60_000));
        // Time spent before the call (authorising, describing the workflow) comes off its wait.
        vi.advanceTimersByTime(1500);
        seen.push(waitWithinBudget(deps, 60_000));
        vi.advanceTimersByTime(400);
        seen.push(waitWithinBudget(deps, 60_000));
        // With almost nothing left the request is out of time: the call is not made, nor blamed.
        vi.advanceTimersByTime(60);
        expect(() => waitWithinBudget(deps, 60_000)).toThrow(
          expect.objectContaining({ dependency: 'either', reason: expect.stringMatching(/ran out of time/) }),
        );
      }),
    );
    // The budget is the deadline and the net's margin (500 ms): the call's wait ends at the deadline.
    expect(seen).toEqual([1000, 2000, 500, 100]);
    // Outside a request (a worker's call), nothing shortens it.
    expect(waitWithinBudget(deps, 700)).toBe(700);
  });
});
