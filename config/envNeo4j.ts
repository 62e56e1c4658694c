/**
 * Neo4j: where the graph is and who Persona is there (NEO4J_*), the bolt address its URI names,
 * and the longest a write transaction may run (which the change feed's lag must exceed).
 */
import { z } from 'zod';
import type { EnvOf } from './envCore';

/**
 * No write transaction may run longer than this (graph/graph.ts enforces it on every write);
 * the change feed's lag must exceed it by FEED_LAG_MARGIN_MS (clock steps, commit latency).
 */
export const WRITE_TX_TIMEOUT_MS = 10_000;
export const FEED_LAG_MARGIN_MS = 2_000;

export const neo4jShape = {
  NEO4J_URI: z
    .string()
    .regex(/^(bolt|neo4j)(\+s|\+ssc)?:\/\//, 'expected a bolt:// or neo4j:// URI')
    // Routing: a cluster's driver sends read sessions to followers, writes to the leader; a single
    // server answers both (its advertised address must be the one clients reach it at).
    .default('neo4j://127.0.0.1:7687'),
  NEO4J_USER: z.string().min(1).default('neo4j'),
  NEO4J_PASSWORD: z.string().min(8, 'Neo4j needs a password of at least 8 characters').default('persona-local'),
  NEO4J_DATABASE: z.string().min(1).default('neo4j'),
};

export type Neo4jEnv = EnvOf<typeof neo4jShape>;

/** NEO4J_URI's host and port (7687 when it names none). */
export function neo4jBoltAddress(uri: Neo4jEnv['NEO4J_URI']): { neo4jBoltHost: string; neo4jBoltPort: number } {
  const bolt = new URL(uri.replace(/^[a-z+]+:/, 'http:'));
  return { neo4jBoltHost: bolt.hostname, neo4jBoltPort: bolt.port ? Number(bolt.port) : 7687 };
}
