/**
 * The bookmarks of the api's writes travel into Temporal as a header, `persona-bookmarks`: the
 * api's client puts the bookmarks of its latest writes (graph/bookmarks.ts) on every start, signal
 * and Update, signed (temporal/bookmarkSeal.ts); a workflow keeps the messages its start carried
 * and the latest few it received since, and passes them on to every activity it schedules (and its
 * child workflows, signals and continue-as-new run); and each activity's read sessions wait for
 * those whose signature holds
 * (workers/logging.ts). So an activity reads, on whichever cluster member answers, at or past what
 * the api wrote before it started or signalled the workflow.
 *
 * They name the event log's epoch: a restore starts a new one, and bookmarks of another epoch than
 * the graph's are not waited for (a restored store never reaches them). Workflow code cannot check
 * a signature (no keys, no crypto in its sandbox): it only keeps and forwards messages of the
 * right shape; the activity checks them.
 */
import { defaultPayloadConverter } from '@temporalio/common';
import type { Headers } from './requestId';

export const BOOKMARKS_HEADER_KEY = 'persona-bookmarks';

/** The most bookmarks a message carries: the newest (Neo4j waits for the furthest of them anyway). */
export const MAX_CARRIED_BOOKMARKS = 8;

/** The most messages a header carries: the start's latest 4, then the latest 4 received since. */
export const MAX_CARRIED_MESSAGES = 8;
/** How many of the messages received after its start a workflow keeps: the latest. */
export const MAX_LATER_MESSAGES = 4;

/** Neo4j's bookmarks are short (about 30 characters); anything much longer is no bookmark of Persona's. */
const MAX_BOOKMARK_LENGTH = 256;
const KEY_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** An HMAC-SHA256, base64url. */
const MAC = /^[A-Za-z0-9_-]{43}$/;
const START_KEPT = MAX_CARRIED_MESSAGES - MAX_LATER_MESSAGES;

export interface CarriedBookmarks {
  /** The event log's epoch when they were taken (graph/events.ts). */
  epoch: number;
  bookmarks: string[];
}

/** One message's bookmarks as its sender signed them (temporal/bookmarkSeal.ts). */
export interface SignedBookmarks extends CarriedBookmarks {
  /** The payload key (PERSONA_PAYLOAD_KEYS) the signature's key was derived from. */
  kid: string;
  mac: string;
}

/** `headers` with the messages added (unchanged when there are none). */
export function withBookmarks(headers: Headers, carried: readonly SignedBookmarks[] | undefined): Headers {
  if (!carried || carried.length === 0) return headers;
  return { ...headers, [BOOKMARKS_HEADER_KEY]: defaultPayloadConverter.toPayload(carried) };
}

function isSigned(value: unknown): value is SignedBookmarks {
  const { epoch, bookmarks, kid, mac } = (value ?? {}) as Partial<SignedBookmarks>;
  if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 0) return false;
  if (!Array.isArray(bookmarks) || bookmarks.length === 0 || bookmarks.length > MAX_CARRIED_BOOKMARKS) return false;
  if (!bookmarks.every((b) => typeof b === 'string' && b.length > 0 && b.length <= MAX_BOOKMARK_LENGTH)) return false;
  return typeof kid === 'string' && KEY_ID.test(kid) && typeof mac === 'string' && MAC.test(mac);
}

/**
 * The messages a header carries; undefined when none, or when any is not of the expected shape
 * (its signature is the activity's to check).
 */
export function bookmarksOf(headers: Headers | null | undefined): SignedBookmarks[] | undefined {
  const payload = headers?.[BOOKMARKS_HEADER_KEY];
  if (!payload) return undefined;
  let value: unknown;
  try {
    value = defaultPayloadConverter.fromPayload(payload);
  } catch {
    return undefined;
  }
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_CARRIED_MESSAGES) return undefined;
  if (!value.every(isSigned)) return undefined;
  return value.map(({ epoch, bookmarks, kid, mac }) => ({ epoch, bookmarks, kid, mac }));
}

/**
 * What a workflow holds: the messages its start carried, for its whole run (a signal cannot push
 * them out), and the latest MAX_LATER_MESSAGES received since.
 */
export interface HeldBookmarks {
  start: SignedBookmarks[];
  later: SignedBookmarks[];
}

const identity = (m: SignedBookmarks): string => JSON.stringify([m.epoch, m.bookmarks, m.kid, m.mac]);

/** What a workflow holds from its start's header. */
export function heldFromStart(carried: readonly SignedBookmarks[] | undefined): HeldBookmarks | undefined {
  return carried ? { start: carried.slice(-START_KEPT), later: [] } : undefined;
}

/**
 * What a workflow holds after a signal or Update carried `received`: the messages received since
 * its start that are not among them, then those of them its start did not carry, the latest
 * MAX_LATER_MESSAGES kept. Messages are compared whole.
 */
export function mergeBookmarks(
  held: HeldBookmarks | undefined,
  received: readonly SignedBookmarks[] | undefined,
): HeldBookmarks | undefined {
  if (!received) return held;
  const fromStart = new Set((held?.start ?? []).map(identity));
  const fresh = received.filter((m) => !fromStart.has(identity(m)));
  const now = new Set(fresh.map(identity));
  const later = [...(held?.later ?? []).filter((m) => !now.has(identity(m))), ...fresh];
  return { start: held?.start ?? [], later: later.slice(-MAX_LATER_MESSAGES) };
}

/** What a workflow passes on (to an activity, a child, a signal, its next run): at most MAX_CARRIED_MESSAGES. */
export function carriedOf(held: HeldBookmarks | undefined): SignedBookmarks[] | undefined {
  if (!held) return undefined;
  const all = [...held.start.slice(-START_KEPT), ...held.later];
  return all.length > 0 ? all : undefined;
}
