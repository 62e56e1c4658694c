import { describe, expect, it } from 'vitest';
import type { Logger } from '../runtime/logger';
import { closeWorker, type WorkerResources } from './lifecycle';

/** Resources whose closes are recorded in order; `failing` names those that throw. */
function resources(failing: string[]) {
  const closed: string[] = [];
  const close = (what: string) => async () => {
    closed.push(what);
    if (failing.includes(what)) throw new Error(`${what} would not close`);
  };
  const r = {
    server: { close: (done: () => void) => (closed.push('server'), done()) },
    stopEnsuringTopics: { abort: () => void closed.push('topics') },
    sequencer: { stop: close('sequencer') },
    invalidations: { close: close('invalidations') },
    connection: { close: close('connection') },
    temporal: { connection: { close: close('client connection') } },
    kafka: { close: close('kafka') },
    driver: { close: close('driver') },
    tracing: { shutdown: close('tracing') },
  } as unknown as WorkerResources;
  const logged: { level: string; msg: string; err?: unknown }[] = [];
  const logger = {
    info: (msg: string) => logged.push({ level: 'info', msg }),
    error: (obj: { err: unknown }, msg: string) => logged.push({ level: 'error', msg, err: obj.err }),
  } as unknown as Logger;
  return { r, closed, logger, logged };
}

const ALL = [
  'server',
  'topics',
  'sequencer',
  'invalidations',
  'connection',
  'client connection',
  'kafka',
  'driver',
  'tracing',
];

describe('closing the worker process', () => {
  it('closes everything in order and says bye', async () => {
    const { r, closed, logger, logged } = resources([]);
    expect(await closeWorker(r, logger)).toBe(true);
    expect(closed).toEqual(ALL);
    expect(logged).toEqual([{ level: 'info', msg: 'bye' }]);
  });

  it('goes on past a close that fails, logs what it was, and says so', async () => {
    const { r, closed, logger, logged } = resources(['connection', 'kafka']);
    expect(await closeWorker(r, logger)).toBe(false);
    // The driver and the traces are closed though the Temporal connection and Kafka failed.
    expect(closed).toEqual(ALL);
    expect(logged.filter((l) => l.level === 'error').map((l) => l.msg)).toEqual([
      "could not close the Workers' Temporal connection; closing the rest",
      'could not close the Kafka producer; closing the rest',
    ]);
    expect(logged.at(-1)?.msg).toMatch(/unclosed/);
  });

  it('skips what the process did not open', async () => {
    const { r, logger } = resources([]);
    const without = { ...r, sequencer: undefined, invalidations: undefined, kafka: undefined, tracing: null };
    expect(await closeWorker(without, logger)).toBe(true);
  });
});
