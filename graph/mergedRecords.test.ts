import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { CustomerMergedError, NotFoundError } from './errors';
import { retryOnSurvivor, survivorNamedBy } from './mergedRecords';

describe('a write that follows a merge', () => {
  it('runs once for a customer that is not a tombstone', async () => {
    const asked: string[] = [];
    const done = await retryOnSurvivor('c-1', (id) => {
      asked.push(id);
      return Promise.resolve(`written for ${id}`);
    });
    expect(done).toEqual({ customerId: 'c-1', result: 'written for c-1' });
    expect(asked).toEqual(['c-1']);
  });

  it('runs once more for the survivor the refusal names, and says so', async () => {
    const asked: string[] = [];
    const done = await retryOnSurvivor('c-1', (id) => {
      asked.push(id);
      return id === 'c-1' ? Promise.reject(new CustomerMergedError('c-1', 'c-2')) : Promise.resolve(id.length);
    });
    expect(done).toEqual({ customerId: 'c-2', result: 3 });
    expect(asked).toEqual(['c-1', 'c-2']);
  });

  it('follows only the refusal itself, never a failure that wraps one (raised after a side effect)', async () => {
    expect(survivorNamedBy(new CustomerMergedError('c-1', 'c-9'))).toBe('c-9');
    const wrapped = ApplicationFailure.create({ message: 'charged', cause: new CustomerMergedError('c-1', 'c-9') });
    expect(survivorNamedBy(wrapped)).toBeNull();
    expect(survivorNamedBy(new NotFoundError('Customer', 'c-1'))).toBeNull();
    const asked: string[] = [];
    await expect(
      retryOnSurvivor('c-1', (id) => {
        asked.push(id);
        return Promise.reject(wrapped);
      }),
    ).rejects.toBe(wrapped);
    expect(asked).toEqual(['c-1']);
  });

  it('passes any other error on, and follows one merge only', async () => {
    const gone = new NotFoundError('Customer', 'c-1');
    await expect(retryOnSurvivor('c-1', () => Promise.reject(gone))).rejects.toBe(gone);
    const again = new CustomerMergedError('c-2', 'c-3');
    await expect(
      retryOnSurvivor('c-1', (id) => Promise.reject(id === 'c-1' ? new CustomerMergedError('c-1', 'c-2') : again)),
    ).rejects.toBe(again);
  });
});
