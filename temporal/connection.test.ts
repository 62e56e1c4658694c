import { createServer, type AddressInfo } from 'node:net';
import { status as grpcStatus } from '@grpc/grpc-js';
import type { Connection } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { retryPausesOf } from './closableConnection';
import { connectTemporal, ensureSearchAttributes, missingSearchAttributes } from './connection';

/** An operator service whose namespace has `registered` (or whose list is refused), recording what is added. */
function fakeConnection(registered: string[] | Error) {
  const added: string[][] = [];
  const connection = {
    operatorService: {
      listSearchAttributes: () =>
        registered instanceof Error
          ? Promise.reject(registered)
          : Promise.resolve({ customAttributes: Object.fromEntries(registered.map((n) => [n, 2])) }),
      addSearchAttributes: (req: { searchAttributes: Record<string, number> }) => {
        added.push(Object.keys(req.searchAttributes));
        return Promise.resolve({});
      },
    },
  } as unknown as Connection;
  return { connection, added };
}

describe("the namespace's search attributes", () => {
  it('names those an older namespace lacks, and registers only those', async () => {
    const older = fakeConnection(['PersonaCustomerId', 'SomeoneElses']);
    const lacking = ['PersonaRecoveryState', 'PersonaAttentionReason', 'PersonaOverdue'];
    expect(await missingSearchAttributes(older.connection, 'default')).toEqual(lacking);
    expect(await ensureSearchAttributes(older.connection, 'default')).toEqual(lacking);
    expect(older.added).toEqual([lacking]);
  });

  it('finds nothing missing in a complete namespace, and says so (null) when the list is refused', async () => {
    const complete = fakeConnection([
      'PersonaCustomerId',
      'PersonaRecoveryState',
      'PersonaAttentionReason',
      'PersonaOverdue',
    ]);
    expect(await missingSearchAttributes(complete.connection, 'default')).toEqual([]);
    expect(await ensureSearchAttributes(complete.connection, 'default')).toEqual([]);
    expect(complete.added).toEqual([]);
    const refused = fakeConnection(Object.assign(new Error('permission denied'), { code: 7 }));
    expect(await missingSearchAttributes(refused.connection, 'default')).toBeNull();
  });
});

describe('closing a connection while a call waits to retry', () => {
  it('ends the call and throws nothing later from the retry’s timer', { timeout: 15_000 }, async () => {
    // A port nobody listens on: every attempt fails UNAVAILABLE, which the client retries after a pause.
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const settings = { TEMPORAL_ADDRESS: `127.0.0.1:${port}`, TEMPORAL_NAMESPACE: 'default' };
    for (const options of [{}, { callDeadlineMs: 10_000 }]) {
      const { connection } = await connectTemporal(settings, { lazy: true, ...options });
      const pauses = retryPausesOf(connection);
      expect(pauses).toBeDefined();
      const paused = pauses!.nextPause();
      const call = connection.workflowService.getSystemInfo({}).then(
        () => 'answered',
        (err: unknown) => err,
      );
      await paused;
      await connection.close();
      // Without the drain the retry's timer fires on a closed channel and throws where nothing catches it.
      expect(await call).toMatchObject({ code: grpcStatus.UNAVAILABLE });
    }
  });
});
