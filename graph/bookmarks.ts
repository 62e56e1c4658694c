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
import neo4j, { type Driver } from 'neo4j-driver';
import { EVENT_LOG_ID } from './events';
import { isBookmarkUnreachable, recentWriteBookmarks, type Graph } from './graph';

const epochs = new WeakMap<Driver, Map<string, Promise<number>>>();

/**
 * The event log's epoch (graph/events.ts): 0 until the graph is first restored. Read once per
 * driver and database, and kept: a restore runs with every api and worker stopped, so a process
 * never outlives the epoch it read; any member may answer (it changes only then). A failed read is
 * not kept (asked again next time).
 */
export function currentEpoch(driver: Driver, database: string): Promise<number> {
  let byDatabase = epochs.get(driver);
  if (!byDatabase) epochs.set(driver, (byDatabase = new Map<string, Promise<number>>()));
  const known = byDatabase.get(database);
  if (known) return known;
  const epoch = driver
    .executeQuery(
      `OPTIONAL MATCH (log:EventLog {id: $id}) RETURN coalesce(log.epoch, 0) AS epoch`,
      { id: EVENT_LOG_ID },
      { database, routing: 'READ' },
    )
    .then((r) => Number(r.records[0]?.get('epoch') ?? 0));
  byDatabase.set(database, epoch);
  epoch.catch(() => {
    if (byDatabase.get(database) === epoch) byDatabase.delete(database);
  });
  return epoch;
}

/**
 * What this process's writes left for another process to wait for: the bookmarks of its latest
 * writes (graph.ts `recentWriteBookmarks`, the newest `max`) and the epoch they belong to;
 * undefined when it wrote nothing yet, or when the epoch cannot be read now (the workflow then
 * reads without them: a "not found" is still asked again on the leader, workers/logging.ts).
 */
export async function bookmarksToCarry(
  g: Graph,
  max: number,
): Promise<{ epoch: number; bookmarks: string[] } | undefined> {
  const bookmarks = recentWriteBookmarks(g).slice(-max);
  if (bookmarks.length === 0) return undefined;
  try {
    return { epoch: await currentEpoch(g.driver, g.database), bookmarks };
  } catch {
    return undefined;
  }
}

/**
 * Whether the member a read would go to reaches `bookmarks` within Neo4j's wait: one explicit
 * transaction begun with them, which the driver never retries (a transaction function would retry
 * a BookmarkTimeout for its whole retry budget, 30 s on a worker, at every read). True on any other
 * error: the caller's own reads meet it and answer it as they do.
 */
export async function bookmarksReached(g: Graph, bookmarks: readonly string[]): Promise<boolean> {
  const session = (g.readDriver ?? g.driver).session({
    database: g.database,
    defaultAccessMode: neo4j.session.READ,
    bookmarks: [...bookmarks],
  });
  try {
    const tx = session.beginTransaction();
    await tx.run('RETURN 1');
    await tx.commit();
    return true;
  } catch (err) {
    return !isBookmarkUnreachable(err);
  } finally {
    await session.close();
  }
}
