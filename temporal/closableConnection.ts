/**
 * A Temporal Connection that may be closed while its calls retry.
 *
 * The SDK's gRPC retry interceptor waits out a pause with a timer and then opens the next attempt on
 * the channel. If the connection closes during that pause, the timer's attempt throws "Channel has
 * been shut down" where nothing can catch it: an uncaught exception that ends the process (an api
 * or worker shutting down, a test's harness closing while a status read it gave up on still
 * retries). The SDK's `close()` does not wait for those timers.
 *
 * So every Persona connection retries through `RetryPauses`: once closing begins no failed attempt
 * is retried, and `close()` first waits out the pauses already begun (each at most the retry
 * policy's longest, a few hundred ms for a client with a call deadline), so the attempts they open
 * find the channel still open, fail or answer, and end their call. Then the channel closes.
 */
import { Connection, makeGrpcRetryInterceptor, type GrpcRetryOptions } from '@temporalio/client';
import type { Interceptor } from '@grpc/grpc-js';

/** The pauses between a call's attempts: when the last one ends, and whether new ones may begin. */
export class RetryPauses {
  #closing = false;
  /** When the latest pause begun ends (performance.now() ms: the monotonic clock timers keep too). */
  #lastEndsAt = 0;
  #scheduled = 0;
  #waiters: (() => void)[] = [];

  /** The SDK's retry interceptor with `policy`, but no retry once closing began, and its pauses counted. */
  interceptor(policy: GrpcRetryOptions): Interceptor {
    return makeGrpcRetryInterceptor({
      retryableDecider: (attempt, status) => !this.#closing && policy.retryableDecider(attempt, status),
      // Asked right after the decider said yes; the SDK sets its timer with the answer at once.
      delayFunction: (attempt, status) => {
        const ms = policy.delayFunction(attempt, status);
        this.#lastEndsAt = Math.max(this.#lastEndsAt, performance.now() + ms);
        this.#scheduled++;
        for (const wake of this.#waiters.splice(0)) wake();
        return ms;
      },
    });
  }

  /** How many pauses have begun (for tests and metrics). */
  get scheduled(): number {
    return this.#scheduled;
  }

  /** Resolves when the next pause begins: its timer is set by then. */
  nextPause(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /**
   * No retry from now on; resolves once every pause already begun has ended. A timer set for the
   * same or an earlier moment fires first (Node runs due timers in the order they fall due), so
   * by then each pause's next attempt has been opened. Up to the retry policy's longest pause: a
   * few hundred ms with a call deadline, about 6 s with the SDK's defaults.
   */
  async close(): Promise<void> {
    this.#closing = true;
    if (this.#scheduled === 0) return;
    // Even a pause whose end has passed: its timer may not have run yet (a busy event loop).
    const wait = Math.max(0, this.#lastEndsAt - performance.now());
    await new Promise((resolve) => setTimeout(resolve, wait + 1));
  }
}

/** A Connection whose `close()` waits out its calls' retry pauses first (see above). */
export class ClosableConnection extends Connection {
  /** Set by `connectWithPauses` right after construction; absent, `close()` is the SDK's. */
  pauses?: RetryPauses;

  override async close(): Promise<void> {
    await this.pauses?.close();
    await super.close();
  }
}

/** The retry pauses of a connection `connectTemporal` made (undefined for any other). */
export function retryPausesOf(connection: Connection): RetryPauses | undefined {
  return connection instanceof ClosableConnection ? connection.pauses : undefined;
}
