/** Small process helpers for the stack CLI: run a command, start a daemon, find and stop it. */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export type Log = (line: string) => void;

/** Runs a command to completion; on failure the error carries the tail of its output. */
export function run(command: string, args: string[], opts: { log: Log; env?: NodeJS.ProcessEnv }): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-8000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (err) => reject(new Error(`could not run ${command}: ${err.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`${command} ${args.join(' ')} exited with ${code}\n${output.trim()}`));
    });
  });
}

export interface Daemon {
  name: string;
  pidFile: string;
  logFile: string;
}

export function readPid(daemon: Daemon): number | undefined {
  if (!existsSync(daemon.pidFile)) return undefined;
  const pid = Number(readFileSync(daemon.pidFile, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export function isAlive(pid: number | undefined): pid is number {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts a long-running process in its own process group, detached from this one. */
export function startDaemon(
  daemon: Daemon,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd?: string,
): number {
  mkdirSync(path.dirname(daemon.logFile), { recursive: true });
  mkdirSync(path.dirname(daemon.pidFile), { recursive: true });
  const out = openSync(daemon.logFile, 'a');
  try {
    const child = spawn(command, args, { env, cwd, detached: true, stdio: ['ignore', out, out] });
    if (child.pid === undefined) throw new Error(`could not start ${daemon.name} (${command})`);
    child.unref();
    writeFileSync(daemon.pidFile, String(child.pid));
    return child.pid;
  } finally {
    closeSync(out);
  }
}

/** How a stop went: the process ended on SIGTERM, had to be killed, or was not running. */
export type StopResult = 'stopped' | 'killed' | 'not-running';

/** Sends SIGTERM, waits for the process to end, and SIGKILLs it after the grace period. */
export async function stopDaemon(daemon: Daemon, graceMs: number, log: Log): Promise<StopResult> {
  const pid = readPid(daemon);
  if (!isAlive(pid)) {
    rmSync(daemon.pidFile, { force: true });
    return 'not-running';
  }
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  let result: StopResult = 'stopped';
  if (isAlive(pid)) {
    log(`${daemon.name}: still running after ${graceMs / 1000}s, killing it`);
    process.kill(pid, 'SIGKILL');
    while (isAlive(pid)) await sleep(100);
    result = 'killed';
  }
  rmSync(daemon.pidFile, { force: true });
  return result;
}

/** True when something accepts TCP connections on host:port. */
export function portOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (open: boolean): void => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Polls `probe` every 100 ms until it resolves true; throws with `what` and the last error after
 * `timeoutMs`. A service is seen ready within 100 ms of being so (within 500 ms when it polled every
 * 500 ms); a probe of a service still starting is cheap (a refused connection, a look at its output).
 */
export async function waitUntil(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs: number,
  alive?: () => boolean,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    try {
      if (await probe()) return;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (alive && !alive())
      throw new Error(`${what}: the process exited while starting${lastError ? ` (${lastError})` : ''}`);
    await sleep(100);
  }
  throw new Error(`${what}: not ready after ${timeoutMs / 1000}s${lastError ? ` (last error: ${lastError})` : ''}`);
}

/** The last lines of a log file, for error messages. */
export function tail(file: string, lines = 20): string {
  if (!existsSync(file)) return '';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}
