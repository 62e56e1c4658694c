/**
 * Neo4j: where the graph is and who Persona is there (NEO4J_*), the bolt address its URI names,
 * the longest a write transaction may run (which the change feed's lag must exceed), and what
 * production refuses of the password.
 */
import { z } from 'zod';
import type { ConfigIssue, EnvOf } from './envCore';

/**
 * No write transaction may run longer than this (graph/graph.ts enforces it on every write);
 * the change feed's lag must exceed it by FEED_LAG_MARGIN_MS (clock steps, commit latency).
 */
export const WRITE_TX_TIMEOUT_MS = 10_000;
export const FEED_LAG_MARGIN_MS = 2_000;

/** The local stack's Neo4j password (stack/neo4j sets it at every start): anyone who read the repository knows it. */
export const NEO4J_LOCAL_PASSWORD = 'persona-local';

export const neo4jShape = {
  NEO4J_URI: z
    .string()
    .regex(/^(bolt|neo4j)(\+s|\+ssc)?:\/\//, 'expected a bolt:// or neo4j:// URI')
    // Routing: a cluster's driver sends read sessions to followers, writes to the leader; a single
    // server answers both (its advertised address must be the one clients reach it at).
    .default('neo4j://127.0.0.1:7687'),
  NEO4J_USER: z.string().min(1).default('neo4j'),
  NEO4J_PASSWORD: z.string().min(8, 'Neo4j needs a password of at least 8 characters').default(NEO4J_LOCAL_PASSWORD),
  NEO4J_DATABASE: z.string().min(1).default('neo4j'),
};

export type Neo4jEnv = EnvOf<typeof neo4jShape>;

/** What production refuses here: the local stack's password (also what an unset NEO4J_PASSWORD means). */
export function neo4jProductionIssues(env: Pick<Neo4jEnv, 'NEO4J_PASSWORD'>): ConfigIssue[] {
  if (env.NEO4J_PASSWORD === NEO4J_LOCAL_PASSWORD)
    return [
      {
        path: ['NEO4J_PASSWORD'],
        message:
          "required in production (NODE_ENV=production), and not the local stack's default " +
          `(${NEO4J_LOCAL_PASSWORD}): set NEO4J_PASSWORD to the graph's own password (at least 8 characters)`,
      },
    ];
  return [];
}

/** NEO4J_URI's host and port (7687 when it names none). */
export function neo4jBoltAddress(uri: Neo4jEnv['NEO4J_URI']): { neo4jBoltHost: string; neo4jBoltPort: number } {
  const bolt = new URL(uri.replace(/^[a-z+]+:/, 'http:'));
  return { neo4jBoltHost: bolt.hostname, neo4jBoltPort: bolt.port ? Number(bolt.port) : 7687 };
}
