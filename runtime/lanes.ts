/**
 * Bounded concurrency, written once: `work` over `items`, at most `lanes` at once, each lane taking
 * the next item when it is done with one, so items start in order. The callers decide when to stop
 * taking items (`stop`: a breaker, a first failure, a shutdown) and handle their own errors; a
 * rejection of `work` fails the whole once the lanes in flight have ended, never leaving one running
 * behind the caller's back.
 */
export async function inLanes<T>(
  items: readonly T[],
  lanes: number,
  work: (item: T, index: number) => Promise<void>,
  stop: () => boolean = () => false,
): Promise<void> {
  if (!Number.isFinite(lanes)) throw new RangeError(`inLanes: lanes must be a number, not ${lanes}`);
  let next = 0;
  const errors: unknown[] = [];
  // A throwing `stop` is the lane's error too: the other lanes end before it is thrown.
  const more = (): boolean => {
    try {
      return next < items.length && errors.length === 0 && !stop();
    } catch (err) {
      errors.push(err);
      return false;
    }
  };
  const lane = async (): Promise<void> => {
    while (more()) {
      const i = next++;
      try {
        await work(items[i] as T, i);
      } catch (err) {
        errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, lanes), items.length) }, lane));
  if (errors.length > 0) throw errors[0] instanceof Error ? errors[0] : new Error(String(errors[0]));
}
