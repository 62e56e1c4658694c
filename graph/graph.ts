/**
 * The graph handle every graph function takes: the process's one driver, the database name and
 * the token cipher. Writes run as transaction functions (the driver retries them on transient
 * errors, so their bodies are idempotent), and constraint violations become domain errors.
 */
import neo4j, { type Driver, type ManagedTransaction } from 'neo4j-driver';
import { mapNeo4jError } from './errors';
import type { TokenCipher } from './tokens';

export interface Graph {
  driver: Driver;
  database: string;
  tokens: TokenCipher;
}

export async function writeTx<T>(g: Graph, work: (tx: ManagedTransaction) => Promise<T>): Promise<T> {
  const session = g.driver.session({ database: g.database, defaultAccessMode: neo4j.session.WRITE });
  try {
    return await session.executeWrite(work);
  } catch (err) {
    throw mapNeo4jError(err);
  } finally {
    await session.close();
  }
}

export async function readTx<T>(g: Graph, work: (tx: ManagedTransaction) => Promise<T>): Promise<T> {
  const session = g.driver.session({ database: g.database, defaultAccessMode: neo4j.session.READ });
  try {
    return await session.executeRead(work);
  } finally {
    await session.close();
  }
}
