/** The one Neo4j driver of a process: built in the entry point, verified, closed on shutdown. */
import neo4j, { type Driver } from 'neo4j-driver';

export interface Neo4jSettings {
  NEO4J_URI: string;
  NEO4J_USER: string;
  NEO4J_PASSWORD: string;
}

export interface DriverOptions {
  maxConnectionPoolSize?: number;
  /**
   * For a process that answers callers (the api): the longest any step may wait on Neo4j — a
   * pooled connection, a new connection, the transaction functions' retries. Unset (the worker,
   * scripts), the driver waits and retries longer, as background work should.
   */
  deadlineMs?: number;
}

export function createDriver(settings: Neo4jSettings, options: DriverOptions = {}): Driver {
  const deadline = options.deadlineMs;
  return neo4j.driver(settings.NEO4J_URI, neo4j.auth.basic(settings.NEO4J_USER, settings.NEO4J_PASSWORD), {
    maxConnectionPoolSize: options.maxConnectionPoolSize ?? 100,
    connectionAcquisitionTimeout: deadline ?? 10_000,
    connectionTimeout: Math.min(deadline ?? 5_000, 5_000),
    // The driver waits about a second before its first retry and doubles that, and checks the
    // time only between attempts: a third of the deadline keeps it to one retry, inside it.
    ...(deadline ? { maxTransactionRetryTime: Math.floor(deadline / 3) } : {}),
    // Never let the driver log query parameters (they can hold identifiers and tokens).
    logging: undefined,
  });
}

/**
 * Resolves when the database answers a trivial query within the deadline. Runs outside a
 * transaction function, so an unreachable server fails at once instead of being retried.
 */
export async function pingNeo4j(driver: Driver, database: string, timeoutMs = 1000): Promise<void> {
  const session = driver.session({ database, defaultAccessMode: neo4j.session.READ });
  try {
    await session.run('RETURN 1 AS ok', {}, { timeout: timeoutMs });
  } finally {
    await session.close();
  }
}
