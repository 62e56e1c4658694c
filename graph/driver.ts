/** The one Neo4j driver of a process: built in the entry point, verified, closed on shutdown. */
import neo4j, { type Driver } from 'neo4j-driver';

export interface Neo4jSettings {
  NEO4J_URI: string;
  NEO4J_USER: string;
  NEO4J_PASSWORD: string;
}

export function createDriver(settings: Neo4jSettings, options: { maxConnectionPoolSize?: number } = {}): Driver {
  return neo4j.driver(settings.NEO4J_URI, neo4j.auth.basic(settings.NEO4J_USER, settings.NEO4J_PASSWORD), {
    maxConnectionPoolSize: options.maxConnectionPoolSize ?? 100,
    connectionAcquisitionTimeout: 10_000,
    connectionTimeout: 5_000,
    // Never let the driver log query parameters (they can hold identifiers and tokens).
    logging: undefined,
  });
}

/** Resolves when the database answers a trivial query within the deadline. */
export async function pingNeo4j(driver: Driver, database: string, timeoutMs = 3000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Neo4j did not answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([driver.executeQuery('RETURN 1 AS ok', {}, { database }), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
