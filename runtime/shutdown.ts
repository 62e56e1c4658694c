/** Runs cleanup steps once on SIGTERM/SIGINT, logs each, and exits 0 (1 if a step failed). */
import type { Logger } from './logger';

export function onShutdown(logger: Logger, steps: { name: string; run: () => Promise<unknown> }[]): void {
  let stopping = false;
  const stop = async (signal: NodeJS.Signals): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    let failed = false;
    for (const step of steps) {
      try {
        await step.run();
        logger.info(`stopped ${step.name}`);
      } catch (err) {
        failed = true;
        logger.error({ err }, `stopping ${step.name} failed`);
      }
    }
    logger.info('bye');
    process.exit(failed ? 1 : 0);
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, (s) => void stop(s));
}
