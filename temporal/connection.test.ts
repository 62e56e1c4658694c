import type { Connection } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { ensureSearchAttributes, missingSearchAttributes } from './connection';

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
