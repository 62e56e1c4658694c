/** Waiting in real time for something a real service does (never for what time-skipping can skip). */
import { setTimeout as sleep } from 'node:timers/promises';

/** Polls `check` every 200 ms until it is true; fails after `timeoutMs`. A throwing check counts as false. */
export async function until(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(200);
  }
}
