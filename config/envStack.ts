/**
 * The local stack and backups: the folder the stack installs into and keeps its data and secrets
 * in, the sizes and ports of its Neo4j, Temporal and Kafka, the time-skipping test server, and
 * where `npm run backup` writes archives and how long they are kept.
 */
import path from 'node:path';
import { z } from 'zod';
import { port, repoRoot, type EnvOf } from './envCore';

const mebibytes = z.coerce.number().int().min(16);

export const stackShape = {
  /** Where `npm run backup` writes archives (default: `backups/` in the stack's folder). */
  PERSONA_BACKUP_DIR: z.string().optional(),
  /** How many archives `npm run backup` keeps; older ones are deleted after a backup. */
  PERSONA_BACKUP_KEEP: z.coerce.number().int().min(1).default(7),
  /**
   * The erasure deadline for archives: an archive holds the history keys of every customer erased
   * after it was taken, so none lives longer than this (deleted by the next backup, refused by a
   * restore). At most 30: an erasure is complete within a month, archives included.
   */
  PERSONA_BACKUP_MAX_AGE_DAYS: z.coerce.number().int().min(1).max(30).default(30),
  /** The git-ignored folder the local stack installs into and keeps its data in. */
  PERSONA_STACK_DIR: z.string().default(path.join(repoRoot, '.stack')),
  NEO4J_HEAP: z
    .string()
    .regex(/^\d+[mMgG]$/, 'expected a JVM size such as 512m or 1g')
    .default('512m'),
  NEO4J_PAGECACHE_MB: mebibytes.default(256),
  NEO4J_TX_MEMORY_MB: z.coerce.number().int().min(0).default(512),
  TEMPORAL_UI_PORT: port.default(8233),
  /** Where the local stack's Temporal dev server serves its own Prometheus metrics (the task queues' backlog). */
  TEMPORAL_METRICS_PORT: port.default(9233),
  /**
   * How many Kafka nodes the local stack runs (KRaft, each broker and controller): 1, or 3 for a
   * replicated log (topics with replication 3 and min ISR 2, as in production). Node n listens
   * 10·(n−1) above the ports below.
   */
  PERSONA_KAFKA_NODES: z
    .enum(['1', '3'], { message: 'expected 1 or 3' })
    .default('1')
    .transform((v) => Number(v) as 1 | 3),
  /** The local stack's first Kafka node: its client and controller ports, and each node's heap. */
  KAFKA_PORT: port.default(9092),
  KAFKA_CONTROLLER_PORT: port.default(9093),
  /** The local brokers' second listener: TLS with SASL/PLAIN, what `npm run dev` connects to. */
  KAFKA_SECURE_PORT: port.default(9094),
  KAFKA_HEAP: z
    .string()
    .regex(/^\d+[mMgG]$/, 'expected a JVM size such as 256m or 1g')
    .default('256m'),
  /** Path of the time-skipping test server; defaults to the stack's installed binary. */
  TEMPORAL_TEST_SERVER_PATH: z.string().optional(),
};

export type StackEnv = EnvOf<typeof stackShape>;

/** Where the stack keeps the locally generated payment-token key ring. */
export function localTokenKeysPath(stackDir: string): string {
  return path.join(stackDir, 'secrets', 'token.keys');
}

/** Where the stack keeps the locally generated payload key ring. */
export function localPayloadKeysPath(stackDir: string): string {
  return path.join(stackDir, 'secrets', 'payload.keys');
}

/** Where the stack keeps its broker's TLS keystore, the CA clients trust, and the SASL password. */
export function localKafkaSecretsDir(stackDir: string): string {
  return path.join(stackDir, 'secrets', 'kafka');
}

/** Where the stack keeps the locally generated JWT secret. */
export function localJwtSecretPath(stackDir: string): string {
  return path.join(stackDir, 'secrets', 'jwt.secret');
}
