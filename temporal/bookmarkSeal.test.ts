import { describe, expect, it } from 'vitest';
import { newKeySpec, parseKeyRing } from '../config/keyRing';
import { checkBookmarks, signatureHolds, signBookmarks } from './bookmarkSeal';

const [oldSpec, newSpec] = [newKeySpec('old-1'), newKeySpec('new-1')];
const ring = parseKeyRing(`${newSpec},${oldSpec}`, 'payload key');
const oldRing = parseKeyRing(oldSpec, 'payload key');
const otherRing = parseKeyRing(newKeySpec('new-1'), 'payload key');

describe('signed bookmarks (persona-bookmarks)', () => {
  it('signs with the active key, and every key of the ring checks (a rotation keeps older messages)', () => {
    const signed = signBookmarks(ring, { epoch: 3, bookmarks: ['FB:a', 'FB:b'] });
    expect(signed).toMatchObject({ epoch: 3, bookmarks: ['FB:a', 'FB:b'], kid: 'new-1' });
    expect(signatureHolds(ring, signed)).toBe(true);
    expect(signatureHolds(ring, signBookmarks(oldRing, { epoch: 3, bookmarks: ['FB:a'] }))).toBe(true);
  });

  it('refuses a message changed after signing, or signed by a key the ring does not hold', () => {
    const signed = signBookmarks(ring, { epoch: 3, bookmarks: ['FB:a', 'FB:b'] });
    expect(signatureHolds(ring, { ...signed, bookmarks: ['FB:a', 'FB:c'] })).toBe(false);
    expect(signatureHolds(ring, { ...signed, bookmarks: ['FB:b', 'FB:a'] })).toBe(false);
    expect(signatureHolds(ring, { ...signed, epoch: 4 })).toBe(false);
    expect(signatureHolds(ring, { ...signed, kid: 'old-1' })).toBe(false);
    expect(signatureHolds(ring, { ...signed, kid: 'gone-1' })).toBe(false);
    // Another deployment's key of the same name.
    expect(signatureHolds(ring, signBookmarks(otherRing, { epoch: 3, bookmarks: ['FB:a'] }))).toBe(false);
    // Another spelling of the right MAC (the last character's two spare bits): one spelling only.
    const last = signed.mac.at(-1) as string;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const sibling = alphabet[alphabet.indexOf(last) ^ 1] as string;
    const respelled = { ...signed, mac: signed.mac.slice(0, -1) + sibling };
    expect(Buffer.from(respelled.mac, 'base64url')).toEqual(Buffer.from(signed.mac, 'base64url'));
    expect(signatureHolds(ring, respelled)).toBe(false);
  });

  it('waits only for signed bookmarks of the graph’s epoch, and counts the rest', () => {
    const a = signBookmarks(ring, { epoch: 1, bookmarks: ['FB:a', 'FB:b'] });
    const b = signBookmarks(ring, { epoch: 1, bookmarks: ['FB:b', 'FB:c'] });
    const before = signBookmarks(ring, { epoch: 0, bookmarks: ['FB:old'] });
    const ahead = signBookmarks(ring, { epoch: 2, bookmarks: ['FB:new'] });
    const forged = { ...signBookmarks(otherRing, { epoch: 1, bookmarks: ['FB:x'] }) };
    const retired = signBookmarks(oldRing, { epoch: 1, bookmarks: ['FB:r'] });
    expect(checkBookmarks(ring, [before, a, forged, b, ahead], 1)).toEqual({
      bookmarks: ['FB:a', 'FB:b', 'FB:c'],
      refused: 1,
      unknownKeys: [],
      ahead: 1,
    });
    // A key the ring no longer holds (retired too early, or made up) is named, not taken for forgery.
    expect(checkBookmarks(otherRing, [retired, a], 1)).toEqual({
      bookmarks: [],
      refused: 1,
      unknownKeys: ['old-1'],
      ahead: 0,
    });
    // The graph's epoch unknown (Neo4j unreachable): the latest epoch signed.
    expect(checkBookmarks(ring, [a, before, forged], undefined)).toEqual({
      bookmarks: ['FB:a', 'FB:b'],
      refused: 1,
      unknownKeys: [],
      ahead: 0,
    });
    expect(checkBookmarks(ring, [forged], undefined)).toEqual({
      bookmarks: [],
      refused: 1,
      unknownKeys: [],
      ahead: 0,
    });
  });
});
