import { defaultPayloadConverter } from '@temporalio/common';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BOOKMARKS_HEADER_KEY,
  bookmarksOf,
  MAX_CARRIED_BOOKMARKS,
  MAX_CARRIED_MESSAGES,
  mergeBookmarks,
  withBookmarks,
  type SignedBookmarks,
} from './bookmarks';
import { withRequestId } from './requestId';

const header = (value: unknown) => ({ [BOOKMARKS_HEADER_KEY]: defaultPayloadConverter.toPayload(value) });
const mac = (n: number) => n.toString(36).padStart(43, 'A');
const message = (over: Partial<SignedBookmarks> = {}): SignedBookmarks => ({
  epoch: 0,
  bookmarks: ['FB:a'],
  kid: 'local-1',
  mac: mac(1),
  ...over,
});

describe('the persona-bookmarks header', () => {
  it('carries signed messages beside the other headers, and nothing when there are none', () => {
    const carried = [message({ epoch: 2, bookmarks: ['FB:a', 'FB:b'] })];
    const headers = withBookmarks(withRequestId({}, 'req-1'), carried);
    expect(bookmarksOf(headers)).toEqual(carried);
    expect(Object.keys(headers).sort()).toEqual([BOOKMARKS_HEADER_KEY, 'persona-request-id']);
    expect(withBookmarks({}, undefined)).toEqual({});
    expect(withBookmarks({}, [])).toEqual({});
    expect(bookmarksOf(undefined)).toBeUndefined();
  });

  it('is not believed when it is not of the expected shape', () => {
    const tooMany = Array.from({ length: MAX_CARRIED_BOOKMARKS + 1 }, (_, i) => `FB:${i}`);
    for (const value of [
      'FB:a',
      message(),
      [],
      Array.from({ length: MAX_CARRIED_MESSAGES + 1 }, (_, i) => message({ mac: mac(i) })),
      [{ epoch: 0, bookmarks: ['FB:a'] }],
      [message({ epoch: -1 })],
      [message({ epoch: 1.5 })],
      [{ ...message(), epoch: '0' }],
      [message({ bookmarks: [] })],
      [message({ bookmarks: [''] })],
      [{ ...message(), bookmarks: [7] }],
      [message({ bookmarks: ['x'.repeat(257)] })],
      [message({ bookmarks: tooMany })],
      [message({ kid: 'no spaces' })],
      [message({ mac: 'short' })],
      [message(), null],
      null,
    ])
      expect(bookmarksOf(header(value)), JSON.stringify(value)).toBeUndefined();
  });
});

describe('what a workflow holds (mergeBookmarks)', () => {
  const messages = fc
    .uniqueArray(fc.integer({ min: 0, max: 30 }), { maxLength: MAX_CARRIED_MESSAGES })
    .map((ns) => ns.map((n) => message({ mac: mac(n), bookmarks: [`FB:${n}`] })));

  it('keeps the latest messages, the received ones always and last, each once, at most the cap', () => {
    fc.assert(
      fc.property(
        fc.option(messages, { nil: undefined }),
        fc.option(messages, { nil: undefined }),
        (held, received) => {
          const merged = mergeBookmarks(held, received) ?? [];
          const got = merged.map((m) => m.mac);
          expect(new Set(got).size).toBe(got.length);
          expect(got.length).toBeLessThanOrEqual(MAX_CARRIED_MESSAGES);
          const r = (received ?? []).map((m) => m.mac);
          expect(got.slice(got.length - r.length)).toEqual(r);
          const older = (held ?? []).map((m) => m.mac).filter((m) => !r.includes(m));
          const kept = got.slice(0, got.length - r.length);
          expect(kept).toEqual(older.slice(older.length - kept.length));
          expect(kept.length).toBe(Math.min(older.length, MAX_CARRIED_MESSAGES - r.length));
          // Whatever is held still travels: the header reads back the same.
          if (merged.length > 0) expect(bookmarksOf(withBookmarks({}, merged))).toEqual(merged);
        },
      ),
    );
  });
});
