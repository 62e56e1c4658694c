/** Starting Persona's own processes (api, worker) from tests, on free ports. */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot } from '../../config/env';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface RunningProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** Runs a TypeScript entry point (relative to the repo root) with tsx and extra environment. */
export function startProcess(entry: string, env: Record<string, string>): RunningProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

/** Polls a URL until it answers 200; fails with the process output if it never does. */
export async function waitForOk(url: string, proc: RunningProcess, timeoutMs = 90_000): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null) throw new Error(`process exited (${proc.child.exitCode}) before ${url} answered:\n${proc.output()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.status === 200) return res;
    } catch {
      // not listening yet
    }
    await sleep(250);
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms:\n${proc.output()}`);
}

/**
 * Starts a worker process on a free health port and waits until it is ready. It leaves the
 * shared Temporal Schedules alone (a test worker polls its own task queue).
 */
export async function startWorkerProcess(env: Record<string, string>): Promise<RunningProcess> {
  const port = await freePort();
  const proc = startProcess('workers/main.ts', {
    PERSONA_WORKER_HTTP_PORT: String(port),
    PERSONA_HTTP_HOST: '127.0.0.1',
    PERSONA_SCHEDULES: 'skip',
    LOG_LEVEL: 'warn',
    ...env,
  });
  await waitForOk(`http://127.0.0.1:${port}/readyz`, proc);
  return proc;
}
