/**
 * The `persona-bookmarks` header's signatures (temporal/bookmarks.ts): an HMAC-SHA256 over a
 * message's epoch and bookmarks, under a key derived from the payload key ring
 * (PERSONA_PAYLOAD_KEYS, which the api and every worker hold; the active key signs, every key of
 * the ring checks). A header anyone else made (whoever can signal a workflow through Temporal) is
 * not waited for. Signed, not encrypted: the bookmarks (a database id, transaction numbers) are
 * readable in the history, as they were before.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import type { KeyRing } from '../config/keyRing';
import { bookmarksToCarry } from '../graph/bookmarks';
import type { Graph } from '../graph/graph';
import { MAX_CARRIED_BOOKMARKS, type CarriedBookmarks, type SignedBookmarks } from './bookmarks';

function macKey(ring: KeyRing, keyId: string): Buffer | undefined {
  const root = ring.get(keyId);
  return root ? Buffer.from(hkdfSync('sha256', root, Buffer.alloc(0), 'persona bookmarks', 32)) : undefined;
}

function macOf(key: Buffer, c: CarriedBookmarks): Buffer {
  return createHmac('sha256', key)
    .update(JSON.stringify([c.epoch, c.bookmarks]))
    .digest();
}

/** `c` signed with the ring's active key. */
export function signBookmarks(ring: KeyRing, c: CarriedBookmarks): SignedBookmarks {
  const key = macKey(ring, ring.active.id) as Buffer;
  return { epoch: c.epoch, bookmarks: c.bookmarks, kid: ring.active.id, mac: macOf(key, c).toString('base64url') };
}

/** Whether a message's signature holds under the ring (its key known, its MAC right). */
export function signatureHolds(ring: KeyRing, m: SignedBookmarks): boolean {
  const key = macKey(ring, m.kid);
  if (!key) return false;
  const given = Buffer.from(m.mac, 'base64url');
  const expected = macOf(key, m);
  // One spelling only: 43 base64url characters hold 258 bits, and the decoder ignores the last two.
  if (given.toString('base64url') !== m.mac) return false;
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** What the activity waits for: the bookmarks of the messages whose signature holds, by epoch. */
export interface CheckedBookmarks {
  /** Of the messages of `epoch` (or, when it is unknown, of the latest epoch signed), deduplicated. */
  bookmarks: string[];
  /** Messages whose signature does not hold under a key the ring has. */
  refused: number;
  /** Key ids of messages the ring has no key for (a retired key, or made up). */
  unknownKeys: string[];
  /** Signed messages of an epoch the graph has not reached (no store of Persona's made them). */
  ahead: number;
}

export function checkBookmarks(
  ring: KeyRing,
  messages: readonly SignedBookmarks[],
  epoch: number | undefined,
): CheckedBookmarks {
  const known = messages.filter((m) => ring.get(m.kid) !== undefined);
  const signed = known.filter((m) => signatureHolds(ring, m));
  const at = epoch ?? Math.max(-1, ...signed.map((m) => m.epoch));
  const bookmarks = [...new Set(signed.filter((m) => m.epoch === at).flatMap((m) => m.bookmarks))];
  return {
    bookmarks,
    refused: known.length - signed.length,
    unknownKeys: [...new Set(messages.filter((m) => ring.get(m.kid) === undefined).map((m) => m.kid))],
    ahead: epoch === undefined ? 0 : signed.filter((m) => m.epoch > epoch).length,
  };
}

/** What a process's client puts on a message: its latest writes' bookmarks, signed; none when it wrote nothing. */
export async function signedBookmarksToCarry(graph: Graph, ring: KeyRing): Promise<SignedBookmarks[] | undefined> {
  const carried = await bookmarksToCarry(graph, MAX_CARRIED_BOOKMARKS);
  return carried ? [signBookmarks(ring, carried)] : undefined;
}
