import { defaultPayloadConverter } from '@temporalio/common';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BOOKMARKS_HEADER_KEY,
  bookmarksOf,
  MAX_CARRIED_BOOKMARKS,
  mergeBookmarks,
  withBookmarks,
  type CarriedBookmarks,
} from './bookmarks';
import { withRequestId } from './requestId';

const header = (value: unknown) => ({ [BOOKMARKS_HEADER_KEY]: defaultPayloadConverter.toPayload(value) });

describe('the persona-bookmarks header', () => {
  it('carries an epoch and its bookmarks beside the other headers, and nothing when there are none', () => {
    const carried = { epoch: 2, bookmarks: ['FB:a', 'FB:b'] };
    const headers = withBookmarks(withRequestId({}, 'req-1'), carried);
    expect(bookmarksOf(headers)).toEqual(carried);
    expect(Object.keys(headers).sort()).toEqual([BOOKMARKS_HEADER_KEY, 'persona-request-id']);
    expect(withBookmarks({}, undefined)).toEqual({});
    expect(withBookmarks({}, { epoch: 0, bookmarks: [] })).toEqual({});
    expect(bookmarksOf(undefined)).toBeUndefined();
  });

  it('is not believed when it is not of the expected shape', () => {
    for (const value of [
      'FB:a',
      { epoch: -1, bookmarks: ['FB:a'] },
      { epoch: 1.5, bookmarks: ['FB:a'] },
      { epoch: '0', bookmarks: ['FB:a'] },
      { epoch: 0, bookmarks: [] },
      { epoch: 0, bookmarks: [''] },
      { epoch: 0, bookmarks: [7] },
      { epoch: 0, bookmarks: ['x'.repeat(257)] },
      { epoch: 0, bookmarks: Array.from({ length: MAX_CARRIED_BOOKMARKS + 1 }, (_, i) => `FB:${i}`) },
      null,
    ])
      expect(bookmarksOf(header(value)), JSON.stringify(value)).toBeUndefined();
  });
});

describe('what a workflow holds (mergeBookmarks)', () => {
  const carried = fc.record({
    epoch: fc.integer({ min: 0, max: 3 }),
    bookmarks: fc.uniqueArray(fc.constantFrom(...Array.from({ length: 20 }, (_, i) => `FB:${i}`)), {
      minLength: 1,
      maxLength: MAX_CARRIED_BOOKMARKS,
    }),
  });

  it('keeps the latest message’s epoch, the newest bookmarks, the received ones always, at most the cap', () => {
    fc.assert(
      fc.property(fc.option(carried, { nil: undefined }), fc.option(carried, { nil: undefined }), (held, received) => {
        const merged = mergeBookmarks(held, received);
        if (!received) {
          expect(merged).toEqual(held);
          return;
        }
        if (!held || received.epoch !== held.epoch) {
          expect(merged).toEqual(received);
          return;
        }
        const m = merged as CarriedBookmarks;
        expect(m.epoch).toBe(held.epoch);
        expect(m.bookmarks.length).toBeLessThanOrEqual(MAX_CARRIED_BOOKMARKS);
        expect(new Set(m.bookmarks).size).toBe(m.bookmarks.length);
        // The received ones last, in their order; then as many of the held ones as fit.
        expect(m.bookmarks.slice(-received.bookmarks.length)).toEqual(received.bookmarks);
        const kept = m.bookmarks.slice(0, m.bookmarks.length - received.bookmarks.length);
        const older = held.bookmarks.filter((b) => !received.bookmarks.includes(b));
        expect(kept).toEqual(older.slice(older.length - kept.length));
        expect(kept.length).toBe(Math.min(older.length, MAX_CARRIED_BOOKMARKS - received.bookmarks.length));
        // Whatever was merged still travels: the header reads back the same.
        expect(bookmarksOf(withBookmarks({}, m))).toEqual(m);
      }),
    );
  });
});
