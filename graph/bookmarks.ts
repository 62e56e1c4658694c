/**
 * Read-your-writes across sessions, processes and workflows, with Neo4j's bookmarks (issue 48).
 *
 * - **A process's own writes**: every session of a Graph shares its bookmark manager (the driver's
 *   `neo4j.bookmarkManager()`), so a read begun after a write this process made is answered by a
 *   cluster member that has applied it (it waits until it has). A single instance (Community) has
 *   applied everything it committed: the check is free there.
 * - **Another process's writes**: bookmarks carried in scope (`withCarriedBookmarks`) join every
 *   session begun inside it. A workflow carries the bookmarks of the api that started or signalled
 *   it (the `persona-bookmarks` Temporal header, temporal/bookmarks.ts), and each of its activities
 *   runs inside them (workers/logging.ts), so an activity reads what the api wrote before it.
 * - **A member that cannot reach them** within Neo4j's wait (`db.transaction.bookmark_ready_timeout`)
 *   fails the transaction with BookmarkTimeout: a read session is then asked again on the leader
 *   (graph.ts `readTx`), which has every commit.
 * - **Restores**: a restored store's transaction ids are behind every bookmark taken before it, and
 *   Neo4j would make each read wait for a commit that never comes. Processes hold their managers in
 *   memory and a restore runs with them stopped (docs/runbook.md); carried bookmarks live on in
 *   workflow histories, so they name the event log's epoch, which a restore moves on
 *   (backup/restore.ts), and bookmarks of an earlier epoch are ignored (`currentEpoch`).
 */
import type { Driver } from 'neo4j-driver';
import { EVENT_LOG_ID } from './events';
import type { Graph } from './graph';

const epochs = new WeakMap<Driver, Promise<number>>();

/**
 * The event log's epoch (graph/events.ts): 0 until the graph is first restored. Read once per
 * driver and kept: a restore runs with every api and worker stopped, so a process never outlives
 * the epoch it read. A failed read is not kept (asked again next time).
 */
export function currentEpoch(driver: Driver, database: string): Promise<number> {
  let epoch = epochs.get(driver);
  if (!epoch) {
    epoch = driver
      .executeQuery(
        `OPTIONAL MATCH (log:EventLog {id: $id}) RETURN coalesce(log.epoch, 0) AS epoch`,
        { id: EVENT_LOG_ID },
        { database, routing: 'WRITE' },
      )
      .then((r) => Number(r.records[0]?.get('epoch') ?? 0));
    epochs.set(driver, epoch);
    epoch.catch(() => epochs.delete(driver));
  }
  return epoch;
}

/**
 * What this process's writes left for another process to wait for: the bookmarks of `g`'s sessions
 * (its manager's) and the epoch they belong to, the newest `max`; undefined when there are none, or
 * when the epoch cannot be read now (the workflow then reads without them: a "not found" is still
 * asked again on the leader, workers/logging.ts).
 */
export async function bookmarksToCarry(
  g: Graph,
  max: number,
): Promise<{ epoch: number; bookmarks: string[] } | undefined> {
  if (!g.bookmarks) return undefined;
  const bookmarks = [...(await g.bookmarks.getBookmarks())];
  if (bookmarks.length === 0) return undefined;
  try {
    return { epoch: await currentEpoch(g.driver, g.database), bookmarks: bookmarks.slice(-max) };
  } catch {
    return undefined;
  }
}
