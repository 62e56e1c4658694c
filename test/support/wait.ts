/** Waiting in real time for something a real service does (never for what time-skipping can skip). */
import { setTimeout as sleep } from 'node:timers/promises';
import { TestRunner } from 'vitest';

/**
 * Polls `check` every 200 ms until it is true; fails after `timeoutMs`. A throwing check counts as false.
 * Inside a test, a wait longer than the test's own budget is refused at once: the test would time out
 * first, and only on a machine slow enough to need the wait, with no word on which wait it was.
 */
export async function until(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const test = TestRunner.getCurrentTest();
  if (test && timeoutMs >= test.timeout)
    throw new Error(
      `a wait of ${timeoutMs / 1000} s in a test whose budget is ${test.timeout / 1000} s: ` +
        `give "${test.name}" a timeout longer than its waits`,
    );
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(200);
  }
}
