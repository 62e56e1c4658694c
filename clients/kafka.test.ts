import { ConnectionPool, NetworkError } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { ensureTopicsUntilDone } from './kafka';

describe('a broker missing from the metadata', () => {
  it('is answered as unreachable through the callback, never thrown where no caller can catch it', async () => {
    // What the consumer asks for when the group coordinator is a node its metadata does not list.
    const pool = new ConnectionPool('test');
    const answered = await new Promise<Error | null>((resolve) => {
      pool.get(undefined as never, (error) => resolve(error));
    });
    expect(answered).toBeInstanceOf(NetworkError);
    await expect(pool.get({ host: undefined, port: 9092 } as never)).rejects.toBeInstanceOf(NetworkError);
    await pool.close();
  });
});

describe('ensureTopicsUntilDone', () => {
  it('tries again after each failure, with a doubling backoff, until the topics are made', async () => {
    const reported: [number, number][] = [];
    let calls = 0;
    const made = await ensureTopicsUntilDone(
      async () => {
        calls += 1;
        if (calls < 4) throw new Error('Kafka is away');
        return ['persona.events.v1'];
      },
      {
        signal: new AbortController().signal,
        onError: (_err, attempt, retryInMs) => reported.push([attempt, retryInMs]),
        minBackoffMs: 1,
        maxBackoffMs: 3,
      },
    );
    expect(made).toEqual(['persona.events.v1']);
    expect(reported).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
  });

  it('stops when told to (the worker shutting down), with nothing made', async () => {
    const stop = new AbortController();
    let failures = 0;
    const made = await ensureTopicsUntilDone(
      () => {
        failures += 1;
        return Promise.reject(new Error('Kafka is away'));
      },
      {
        signal: stop.signal,
        // Aborted while it waits a minute before the next attempt.
        onError: () => stop.abort(),
        minBackoffMs: 60_000,
      },
    );
    expect(made).toBeNull();
    expect(failures).toBe(1);
  });
});
