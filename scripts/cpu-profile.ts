/**
 * A CPU profile of exactly the window a benchmark measures, taken inside the process measured.
 * Loaded into it with `--import` after tsx (`npm run bench:interactions -- --cpu-prof` does so
 * for the api it starts): SIGUSR2 starts V8's sampling profiler; the next SIGUSR2 stops it and
 * writes bench/results/cpu-<pid>.cpuprofile — written aside and renamed, so once the file exists
 * it is complete. Open it in Chrome DevTools (Performance) or read the benchmark's summary.
 * Never loaded by a production process.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import { repoRoot } from '../config/env';

let session: Session | null = null;
let queue = Promise.resolve();

async function toggle(): Promise<void> {
  if (!session) {
    session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    return;
  }
  const { profile } = await session.post('Profiler.stop');
  session.disconnect();
  session = null;
  const file = path.join(repoRoot, 'bench', 'results', `cpu-${String(process.pid)}.cpuprofile`);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(`${file}.part`, JSON.stringify(profile));
  renameSync(`${file}.part`, file);
}

process.on('SIGUSR2', () => {
  queue = queue
    .then(toggle)
    .catch((err: unknown) => console.error(`cpu-profile: ${err instanceof Error ? err.message : String(err)}`));
});
