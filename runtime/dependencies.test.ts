import { status } from '@grpc/grpc-js';
import { ServiceError } from '@temporalio/client';
import { Neo4jError } from 'neo4j-driver';
import { describe, expect, it } from 'vitest';
import { DependencyUnavailableError, unavailableDependency, withDeadline } from './dependencies';

/** What the driver raises (its code, or 'N/A' as for a pool's acquisition timeout). */
function newError(message: string, code = 'N/A'): Neo4jError {
  return new Neo4jError(message, code, '50N42', '');
}

/** What grpc-js raises (the Temporal client's transport). */
function grpcError(code: status, details: string): Error {
  return Object.assign(new Error(`${code} ${details}`), { code, details, metadata: {} });
}

describe('unavailableDependency', () => {
  it('recognises a Neo4j that cannot be reached, or whose pool hands out no connection in time', () => {
    expect(unavailableDependency(newError('Could not connect', 'ServiceUnavailable'))).toMatchObject({
      dependency: 'neo4j',
    });
    expect(unavailableDependency(newError('gone', 'SessionExpired'))?.dependency).toBe('neo4j');
    expect(
      unavailableDependency(newError('deadlock', 'Neo.TransientError.Transaction.DeadlockDetected')),
    ).toBeDefined();
    // Stopped at the api's own transaction time limit (a lock wait, typically): busy, not broken.
    for (const code of [
      'Neo.ClientError.Transaction.TransactionTimedOutClientConfiguration',
      'Neo.ClientError.Transaction.LockClientStopped',
    ])
      expect(unavailableDependency(newError('terminated', code))?.dependency).toBe('neo4j');
    const acquisition = newError('Connection acquisition timed out in 2000 ms. Pool status: …');
    expect(unavailableDependency(acquisition)?.reason).toMatch(/no connection to Neo4j/);
  });

  it('recognises a Temporal call that failed UNAVAILABLE, CANCELLED or past its deadline', () => {
    const wrapped = new ServiceError('Failed to start Workflow', {
      cause: grpcError(status.DEADLINE_EXCEEDED, 'Deadline exceeded'),
    });
    expect(unavailableDependency(wrapped)).toMatchObject({ dependency: 'temporal', reason: 'Deadline exceeded' });
    expect(unavailableDependency(grpcError(status.UNAVAILABLE, 'No connection established'))?.dependency).toBe(
      'temporal',
    );
    // What the server's reset of a query past its deadline looks like, as grpc-js reports it.
    const reset = new ServiceError('Failed to query Workflow', {
      cause: grpcError(status.CANCELLED, 'Call cancelled'),
    });
    expect(unavailableDependency(reset)).toMatchObject({ dependency: 'temporal', reason: 'Call cancelled' });
  });

  it('leaves every other error alone: bad input, a constraint, a refused Temporal call', () => {
    expect(unavailableDependency(new Error('boom'))).toBeUndefined();
    expect(
      unavailableDependency(new Neo4jError('x', 'Neo.ClientError.Schema.ConstraintValidationFailed', '', '')),
    ).toBe(undefined);
    expect(unavailableDependency(grpcError(status.NOT_FOUND, 'workflow not found'))).toBeUndefined();
    expect(unavailableDependency(grpcError(status.ALREADY_EXISTS, 'started'))).toBeUndefined();
    // A call this process cancelled itself is answered where it was cancelled: here it is a bug.
    expect(unavailableDependency(grpcError(status.CANCELLED, 'Cancelled on client'))).toBeUndefined();
    // A message over gRPC's size limit fails the same way on every retry (throttling still is a 503).
    const oversize = 'Received message larger than max (5242880 vs. 4194304)';
    expect(unavailableDependency(grpcError(status.RESOURCE_EXHAUSTED, oversize))).toBeUndefined();
    expect(unavailableDependency(grpcError(status.RESOURCE_EXHAUSTED, 'namespace rate limit exceeded'))).toBeDefined();
    // A transaction over its own memory limit fails the same way on every retry: a 500 to look into.
    const tooBig =
      'The allocation of an extra 2.0 MiB would use more than the limit 10.0 MiB. Currently using 9.0 MiB. ' +
      'dbms.memory.transaction.max threshold reached';
    expect(unavailableDependency(newError(tooBig, 'Neo.TransientError.General.MemoryPoolOutOfMemoryError'))).toBe(
      undefined,
    );
  });

  it('answers 503 for a connection the driver could not make or lost, whatever its code', () => {
    const refused =
      'Failed to connect to server. Please ensure that your database is listening on the correct host and port ' +
      'and that you have compatible encryption settings both on Neo4j server and driver. Note that the default ' +
      'encryption setting has changed in Neo4j 4.0. Caused by: read ECONNRESET';
    for (const message of [refused, 'Connection was closed by server', "Connection lost. Server didn't respond in 5ms"])
      expect(unavailableDependency(newError(message)), message).toMatchObject({ dependency: 'neo4j' });
  });

  it('answers 503 when the memory every running transaction shares is spent (busy, not broken)', () => {
    // As the fleet test's Neo4j answered context reads while it caught up after a restart.
    const poolFull =
      'The allocation of an extra 2.0 MiB would use more than the limit 268.8 MiB. Currently using 268.0 MiB. ' +
      'dbms.memory.transaction.total.max threshold reached';
    expect(
      unavailableDependency(newError(poolFull, 'Neo.TransientError.General.MemoryPoolOutOfMemoryError')),
    ).toMatchObject({ dependency: 'neo4j' });
  });
});

describe('withDeadline', () => {
  it('answers what the work answers in time', async () => {
    await expect(withDeadline('neo4j', 1000, async () => 42)).resolves.toBe(42);
    await expect(withDeadline('neo4j', 1000, () => Promise.reject(new Error('no')))).rejects.toThrow('no');
  });

  it('says when the deadline passed, and reports an error the work ends with afterwards', async () => {
    let finish: (err: Error) => void = () => undefined;
    const work = new Promise<never>((_, reject) => (finish = reject));
    const late: unknown[] = [];
    let expired = 0;
    const answer = withDeadline(
      'neo4j',
      20,
      () => work,
      (err) => late.push(err),
      () => (expired += 1),
    );
    await expect(answer).rejects.toBeInstanceOf(DependencyUnavailableError);
    expect(expired).toBe(1);
    finish(new Error('too late'));
    await expect.poll(() => late.length).toBe(1);
    expect(late[0]).toMatchObject({ message: 'too late' });
  });

  it('stops waiting for work that hangs: DependencyUnavailableError naming the dependency', async () => {
    const hung = new Promise<never>(() => undefined);
    const err = await withDeadline('temporal', 30, () => hung).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DependencyUnavailableError);
    expect(err).toMatchObject({ dependency: 'temporal', reason: 'no answer within 30 ms', retryAfterSeconds: 1 });
  });
});
