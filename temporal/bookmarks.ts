/**
 * The bookmarks of the api's writes travel into Temporal as a header, `persona-bookmarks`: the
 * api's client puts its process's bookmarks (graph/bookmarks.ts) on every start, signal and
 * Update; a workflow keeps what its start and each later message carried, merged, and passes it on
 * to every activity it schedules (and its child workflows, signals and continue-as-new run); and
 * each activity's sessions wait for them (workers/logging.ts). So an activity reads, on whichever
 * cluster member answers, at or past what the api wrote before it started or signalled the workflow.
 *
 * They name the event log's epoch: a restore starts a new one, and bookmarks of another epoch than
 * the graph's are not waited for (a restored store never reaches them).
 */
import { defaultPayloadConverter } from '@temporalio/common';
import type { Headers } from './requestId';

export const BOOKMARKS_HEADER_KEY = 'persona-bookmarks';

/** The most bookmarks a message carries: the newest (Neo4j waits for the furthest of them anyway). */
export const MAX_CARRIED_BOOKMARKS = 8;

/** Neo4j's bookmarks are short (about 30 characters); anything much longer is no bookmark of Persona's. */
const MAX_BOOKMARK_LENGTH = 256;

export interface CarriedBookmarks {
  /** The event log's epoch when they were taken (graph/events.ts). */
  epoch: number;
  bookmarks: string[];
}

/** `headers` with the bookmarks added (unchanged when there are none). */
export function withBookmarks(headers: Headers, carried: CarriedBookmarks | undefined): Headers {
  if (!carried || carried.bookmarks.length === 0) return headers;
  return { ...headers, [BOOKMARKS_HEADER_KEY]: defaultPayloadConverter.toPayload(carried) };
}

/** The bookmarks a message carries; undefined when none, or when they are not of the expected shape. */
export function bookmarksOf(headers: Headers | null | undefined): CarriedBookmarks | undefined {
  const payload = headers?.[BOOKMARKS_HEADER_KEY];
  if (!payload) return undefined;
  let value: unknown;
  try {
    value = defaultPayloadConverter.fromPayload(payload);
  } catch {
    return undefined;
  }
  const { epoch, bookmarks } = (value ?? {}) as Partial<CarriedBookmarks>;
  if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 0) return undefined;
  if (!Array.isArray(bookmarks) || bookmarks.length === 0 || bookmarks.length > MAX_CARRIED_BOOKMARKS) return undefined;
  if (!bookmarks.every((b) => typeof b === 'string' && b.length > 0 && b.length <= MAX_BOOKMARK_LENGTH))
    return undefined;
  return { epoch, bookmarks };
}

/**
 * What a workflow holds after receiving `received`: in one epoch, both sets, the received last, the
 * newest MAX_CARRIED_BOOKMARKS kept; of another epoch, the received only (the latest message wins,
 * so one that names an epoch the graph never had is displaced by the next real one).
 */
export function mergeBookmarks(
  held: CarriedBookmarks | undefined,
  received: CarriedBookmarks | undefined,
): CarriedBookmarks | undefined {
  if (!received) return held;
  if (!held || received.epoch !== held.epoch) return received;
  const all = [...held.bookmarks.filter((b) => !received.bookmarks.includes(b)), ...received.bookmarks];
  return { epoch: held.epoch, bookmarks: all.slice(-MAX_CARRIED_BOOKMARKS) };
}
