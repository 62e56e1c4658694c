/** A real identity-graph handle for integration tests, on the local stack's Neo4j. */
import { randomBytes, randomUUID } from 'node:crypto';
import { loadConfig, type Config } from '../../config/env';
import { createDriver, type Graph, type NewPaymentMethodInput } from '../../graph';
import { graphFromConfig } from '../../runtime/graph';
import { payloadCodecFromConfig } from '../../temporal/payloadCodec';
import { contextFromSnapshot, readCustomerSnapshot, type ContextPolicy } from '../../graph/context';
import { toPlain } from '../../graph/convert';
import { encodeCursor } from '../../graph/feed';

export interface TestGraph extends Graph {
  config: Config;
  close(): Promise<void>;
  /** Runs a raw query (for assertions the graph module deliberately does not offer). */
  query<T = Record<string, unknown>>(cypher: string, params?: Record<string, unknown>): Promise<T[]>;
}

/**
 * The local stack's Neo4j, or another one (`on`: a private instance's settings, whose schema the
 * caller migrated).
 */
export function openTestGraph(
  on?: Pick<Config, 'NEO4J_URI' | 'NEO4J_USER' | 'NEO4J_PASSWORD' | 'NEO4J_DATABASE'>,
): TestGraph {
  const config = { ...loadConfig(), ...on };
  const driver = createDriver(config);
  const graph = graphFromConfig(driver, config);
  return {
    ...graph,
    config,
    close: () => driver.close(),
    query: async <T>(cypher: string, params: Record<string, unknown> = {}) => {
      const res = await driver.executeQuery(cypher, params, { database: config.NEO4J_DATABASE });
      return res.records.map((r) => toPlain(r.toObject()) as T);
    },
  };
}

/**
 * A person no other test or run names: `given` (made up when not given), a made-up family name
 * (random letters, so its sound differs too) and a random date of birth in the 1900s. Identity
 * resolution finds customers by name and birth date (graph/matchKeys.ts): a fixed name would
 * collect every run's customers.
 */
export function uniquePerson(given?: string): { given_name: string; family_name: string; birth_date: string } {
  const bytes = randomBytes(12);
  const letters = [...bytes].map((b) => 'bcdfghjklmnprstvwz'[b % 18]);
  const made = `${letters[8]?.toUpperCase()}${letters.slice(9, 12).join('e')}i`;
  const family = `${letters[0]?.toUpperCase()}${letters.slice(1, 4).join('a')}ley${letters.slice(4).join('o')}`;
  const year = 1900 + (bytes.readUInt16BE(0) % 100);
  const month = 1 + ((bytes[2] ?? 0) % 12);
  const day = 1 + ((bytes[3] ?? 0) % 28);
  const pad = (n: number) => String(n).padStart(2, '0');
  return { given_name: given ?? made, family_name: family, birth_date: `${year}-${pad(month)}-${pad(day)}` };
}

/** A unique email per test, so tests never see each other's data. */
export function uniqueEmail(tag = 'user'): string {
  return `${tag}.${randomUUID()}@example.com`;
}

/** A valid card for the wallet, with a fresh token; override any field. */
export function cardInput(overrides: Partial<NewPaymentMethodInput> = {}): NewPaymentMethodInput {
  return {
    type: 'card',
    token: `tok_${randomUUID()}`,
    brand: 'visa',
    last_four: '4242',
    expiry_month: 12,
    expiry_year: 2035,
    ...overrides,
  };
}

/** A change-feed cursor at Neo4j's "now": a reader starting here sees what is written from now on. */
export async function feedCursorAtNow(g: TestGraph): Promise<string> {
  const [row] = await g.query<{ now: string }>('RETURN toString(datetime.realtime()) AS now');
  return encodeCursor({ t: row?.now as string, s: -1, id: '' });
}

/**
 * The payload codec the api and worker use, on the test graph: a test's own client needs it to
 * read what a worker encrypted (results, queries) and to send what it decrypts.
 */
export function testPayloadCodec(graph: TestGraph) {
  return payloadCodecFromConfig(graph.config, graph, 'encode');
}

/** The operators of a query's plan, one per line with its details (EXPLAIN: nothing runs). */
export async function queryPlan(g: Graph, cypher: string, params: Record<string, unknown> = {}): Promise<string> {
  const res = await g.driver.executeQuery(`EXPLAIN ${cypher}`, params, { database: g.database });
  const ops: string[] = [];
  const walk = (p: { operatorType: string; arguments: { Details?: string }; children: unknown[] }) => {
    ops.push(`${p.operatorType} ${p.arguments.Details ?? ''}`);
    p.children.forEach((c) => walk(c as typeof p));
  };
  walk(res.summary.plan as never);
  return ops.join('\n');
}

/**
 * An edge written directly, for a fixture no write of Persona's makes as the test needs it (a
 * method last used long ago, a method used on a device): each timestamp stored as a datetime.
 */
export async function relate(
  g: TestGraph,
  from: { label: string; id: string },
  to: { label: string; id: string },
  type: string,
  at: Record<string, string> = {},
): Promise<void> {
  const set = Object.keys(at).map((k) => `r.${k} = datetime($at.${k})`);
  await g.query(
    `MATCH (a:${from.label} {id: $from}), (b:${to.label} {id: $to}) MERGE (a)-[r:${type}]->(b)` +
      (set.length > 0 ? ` SET ${set.join(', ')}` : ''),
    { from: from.id, to: to.id, at },
  );
}

/** The customer context the api serves: from the snapshot it reads (graph/context.ts). */
export async function customerContext(g: Graph, customerId: string, policy: ContextPolicy) {
  return contextFromSnapshot(await readCustomerSnapshot(g, customerId), policy);
}
