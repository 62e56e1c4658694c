/**
 * How the stack starts Neo4j and the Temporal dev server: the command, arguments and environment
 * of each (`Launch`), from one instance's settings. `stack:up` (stack/services.ts) starts the
 * stack's own instances with them, and tests start private instances the same way
 * (test/support/privateServices.ts).
 */
import path from 'node:path';
import { requiredSearchAttributes } from '../temporal/searchAttributes';
import { NEO4J_LAUNCHER_CLASS, type StackPaths } from './install';

/** How to start one program: its command, arguments and environment (stack/process.ts `startDaemon` runs it). */
export interface Launch {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

/** One Neo4j server: its data folder, address, memory and the one user's credentials. */
export interface Neo4jInstance {
  home: string;
  host: string;
  port: number;
  heap: string;
  pageCacheMb: number;
  txMemoryMb: number;
  user: string;
  password: string;
  /** How long a transaction waits for its bookmarks before it fails (absent: Neo4j's 30 s; at least 1 s). */
  bookmarkWaitMs?: number;
  /** Started to live a short while (a test's private instance): see QUICK_START_JVM. */
  quickStart?: boolean;
}

/**
 * For a JVM that lives a short while: the quick compiler only (C1), no optimising one (C2). A start
 * of Neo4j then costs half the CPU (11 CPU-s → 6 on a two-core machine, docs/performance.md) and
 * is ready sooner; its code runs slower under a long load, which a short-lived instance never has.
 */
export const QUICK_START_JVM: readonly string[] = ['-XX:TieredStopAtLevel=1'];

/** How to start Neo4j (the launcher in stack/neo4j on the installed jars); SIGTERM stops it cleanly. */
export function neo4jLaunch(paths: StackPaths, n: Neo4jInstance): Launch {
  return {
    command: 'java',
    args: [
      `-Xmx${n.heap}`,
      `-Xms${n.heap}`,
      '-XX:+UseG1GC',
      ...(n.quickStart ? QUICK_START_JVM : []),
      '-cp',
      [paths.neo4jClasses, path.join(paths.neo4jLib, '*')].join(path.delimiter),
      NEO4J_LAUNCHER_CLASS,
    ],
    env: {
      ...process.env,
      PERSONA_NEO4J_HOME: n.home,
      PERSONA_NEO4J_BOLT_HOST: n.host,
      PERSONA_NEO4J_BOLT_PORT: String(n.port),
      PERSONA_NEO4J_PAGECACHE: String(n.pageCacheMb),
      PERSONA_NEO4J_TX_MEMORY: String(n.txMemoryMb),
      NEO4J_USER: n.user,
      NEO4J_PASSWORD: n.password,
      ...(n.bookmarkWaitMs === undefined ? {} : { PERSONA_NEO4J_BOOKMARK_WAIT_MS: String(n.bookmarkWaitMs) }),
    },
  };
}

/** One Temporal dev server (with its UI) keeping its state in `dbFile`. */
export interface TemporalInstance {
  host: string;
  port: number;
  uiPort: number;
  /** Where the server serves /metrics (Prometheus text); absent, a port of its choosing. */
  metricsPort?: number;
  dbFile: string;
  namespace: string;
  /** The codec server the UI asks to decode payloads (the api's /codec). */
  codecEndpoint?: string;
}

/** How often the dev server checkpoints its transfer queue; see {@link temporalLaunch}. */
const TRANSFER_CHECKPOINT = '1s';

/**
 * How to start the Temporal dev server with its UI, its namespace and Persona's search attributes
 * made at start, logging JSON at warn and up.
 *
 * A deleted workflow (an operator's delete, or the namespace retention's) goes only once its
 * transfer queue has checkpointed past the run's close, and the server checkpoints every 30 s by
 * default: a delete took from 0.1 to 33 s. Checkpointing every second, one small write of one
 * shard's queue state, makes it 0.1 s (4 s at worst, when the delete waits one retry).
 */
export function temporalLaunch(paths: StackPaths, t: TemporalInstance): Launch {
  return {
    command: paths.temporalBin,
    args: [
      'server',
      'start-dev',
      '--ip',
      t.host,
      '--port',
      String(t.port),
      '--ui-port',
      String(t.uiPort),
      '--db-filename',
      t.dbFile,
      '--namespace',
      t.namespace,
      ...(t.codecEndpoint ? ['--ui-codec-endpoint', t.codecEndpoint] : []),
      ...(t.metricsPort ? ['--metrics-port', String(t.metricsPort)] : []),
      ...requiredSearchAttributes.flatMap((a) => ['--search-attribute', `${a.name}=${a.type}`]),
      '--dynamic-config-value',
      `history.transferProcessorUpdateAckInterval=${JSON.stringify(TRANSFER_CHECKPOINT)}`,
      '--log-format',
      'json',
      '--log-level',
      'warn',
    ],
    env: process.env,
  };
}
