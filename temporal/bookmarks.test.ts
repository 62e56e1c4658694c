import { defaultPayloadConverter } from '@temporalio/common';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BOOKMARKS_HEADER_KEY,
  bookmarksOf,
  MAX_CARRIED_BOOKMARKS,
  MAX_CARRIED_MESSAGES,
  MAX_LATER_MESSAGES,
  carriedOf,
  heldFromStart,
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

describe('what a workflow holds (heldFromStart, mergeBookmarks, carriedOf)', () => {
  const messages = fc
    .uniqueArray(fc.integer({ min: 0, max: 30 }), { maxLength: MAX_CARRIED_MESSAGES })
    .map((ns) => ns.map((n) => message({ mac: mac(n), bookmarks: [`FB:${n}`] })));
  const received = fc
    .uniqueArray(fc.integer({ min: 0, max: 30 }), { minLength: 1, maxLength: 4 })
    .map((ns) => ns.map((n) => message({ mac: mac(n), bookmarks: [`FB:${n}`] })));

  it('keeps what the start carried for good, and the latest messages since, each once, within the cap', () => {
    fc.assert(
      fc.property(fc.option(messages, { nil: undefined }), fc.array(received, { maxLength: 6 }), (start, signals) => {
        let held = heldFromStart(start && start.length > 0 ? start : undefined);
        for (const r of signals) held = mergeBookmarks(held, r);
        const carried = carriedOf(held) ?? [];
        const ids = carried.map((m) => m.mac);
        expect(new Set(ids).size).toBe(ids.length);
        expect(carried.length).toBeLessThanOrEqual(MAX_CARRIED_MESSAGES);
        // No signal pushes out the start's (its latest MAX_CARRIED_MESSAGES - MAX_LATER_MESSAGES).
        const kept = (start ?? []).slice(-(MAX_CARRIED_MESSAGES - MAX_LATER_MESSAGES)).map((m) => m.mac);
        expect(ids.slice(0, kept.length)).toEqual(kept);
        // Then the latest received since, the last signal's own last, none of them the start's.
        const since = ids.slice(kept.length);
        expect(since.length).toBeLessThanOrEqual(MAX_LATER_MESSAGES);
        const last = (signals.at(-1) ?? []).map((m) => m.mac).filter((m) => !kept.includes(m));
        expect(since.slice(since.length - Math.min(last.length, MAX_LATER_MESSAGES))).toEqual(
          last.slice(-MAX_LATER_MESSAGES),
        );
        for (const m of since) expect(kept).not.toContain(m);
        // Whatever is held still travels: the header reads back the same.
        if (carried.length > 0) expect(bookmarksOf(withBookmarks({}, carried))).toEqual(carried);
      }),
    );
  });

  it('compares messages whole: one that copies a held message’s MAC with other bookmarks does not replace it', () => {
    const real = message({ mac: mac(1), bookmarks: ['FB:real'] });
    const copy = message({ mac: mac(1), bookmarks: ['FB:forged'] });
    const held = mergeBookmarks(heldFromStart(undefined), [real]);
    expect(carriedOf(mergeBookmarks(held, [copy]))).toEqual([real, copy]);
    // And a signal that repeats the start's message adds nothing.
    expect(carriedOf(mergeBookmarks(heldFromStart([real]), [real]))).toEqual([real]);
  });
});
