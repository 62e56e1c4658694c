/**
 * The identity graph's schema, applied by an idempotent migration run as a deploy step
 * (`npm run migrate`: scripts/migrate.ts; running it twice, or from two places at once, changes
 * nothing). It records the schema version it applied; the api and the worker only check it
 * (`checkSchema`) and refuse to serve a graph older than the version they need. The rules
 * themselves (constraints and indexes) are graph/schemaRules.ts.
 */
import neo4j, { Neo4jError, type Driver } from 'neo4j-driver';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { RETIRED_SCHEMA, SCHEMA } from './schemaRules';

/**
 * The schema this code reads and writes. Bump it with every change to SCHEMA, RETIRED_SCHEMA
 * (graph/schemaRules.ts) or DATA_MIGRATIONS (graph/schema.test.ts holds their fingerprint and
 * fails until you do): a process refuses a graph migrated to an older version, and serves one
 * migrated to a newer version (a release's migration is additive; see docs/deployment.md, "The
 * migration step").
 */
export const SCHEMA_VERSION = 6;

/** The graph has not been migrated to the version this process needs: run the migration step. */
export class SchemaNotMigratedError extends Error {
  constructor(
    readonly found: number | null,
    readonly needed: number,
  ) {
    super(
      (found === null
        ? 'the graph has no schema version: it was never migrated'
        : `the graph's schema is version ${found}, this release needs ${needed}`) +
        ". Run the migration step first (`npm run migrate`, the deployment's migrate Job or service), then start again",
    );
    this.name = 'SchemaNotMigratedError';
  }
}

export interface MigrationResult {
  /** The schema version the graph is at now (SCHEMA_VERSION, or a newer one another release applied). */
  version: number;
  created: string[];
  dropped: string[];
  existing: string[];
  /** Data migrations this run applied (each runs once per database, recorded as a `Migration` node). */
  migrated: string[];
  ms: number;
}

export interface MigrationOptions {
  indexWaitSeconds?: number;
  /** The currency lifetime values are kept in (minor units). */
  reportingCurrency?: string;
  /** The data migrations to run (default DATA_MIGRATIONS; tests bring their own). */
  dataMigrations?: DataMigration[];
  /** How long a claimed data migration may go without its claim renewed before another takes it over. */
  leaseMs?: number;
}

export interface DataMigration {
  name: string;
  /** One auto-commit statement (it may batch with CALL … IN TRANSACTIONS); idempotent. */
  cypher: string;
  params(options: { reportingCurrency: string }): Record<string, unknown>;
}

/**
 * Conversions of data written by an earlier release, each run once per database. Empty at the
 * first release: the shapes before it never ran anywhere (docs/workflows.md, "Versioning").
 */
export const DATA_MIGRATIONS: DataMigration[] = [];

/**
 * How long a data migration's claim holds without renewal: the process running it renews it every
 * third of that, so only a process that died loses it, however long the migration runs.
 */
const MIGRATION_LEASE_MS = 15 * 60_000;

/** Applies every rule that is missing, waits until all indexes are online, then runs pending data migrations. */
export async function migrate(
  driver: Driver,
  database: string,
  options: MigrationOptions = {},
): Promise<MigrationResult> {
  const {
    indexWaitSeconds = 300,
    reportingCurrency = 'USD',
    dataMigrations = DATA_MIGRATIONS,
    leaseMs = MIGRATION_LEASE_MS,
  } = options;
  const started = Date.now();
  const before = await existingRuleNames(driver, database);
  const created: string[] = [];
  const existing: string[] = [];
  for (const rule of SCHEMA) {
    if (before.has(rule.name)) {
      existing.push(rule.name);
      continue;
    }
    try {
      await driver.executeQuery(rule.cypher, {}, { database });
      created.push(rule.name);
    } catch (err) {
      // Another process created the same rule between our check and our statement.
      if (
        err instanceof Neo4jError &&
        /EquivalentSchemaRuleAlreadyExists|ConstraintAlreadyExists|IndexAlreadyExists/.test(err.code)
      ) {
        existing.push(rule.name);
      } else {
        throw err;
      }
    }
  }
  const dropped: string[] = [];
  for (const rule of RETIRED_SCHEMA) {
    if (!before.has(rule.name)) continue;
    await driver.executeQuery(rule.cypher, {}, { database });
    dropped.push(rule.name);
  }
  await driver.executeQuery(`CALL db.awaitIndexes(${Math.trunc(indexWaitSeconds)})`, {}, { database });
  await checkReportingCurrency(driver, database, reportingCurrency);
  const migrated = await runDataMigrations(driver, database, dataMigrations, { reportingCurrency }, leaseMs);
  // Last: a process that finds this version may rely on everything above being in place.
  const { records } = await driver.executeQuery(
    `MERGE (s:GraphSetting {name: 'schema_version'}) ON CREATE SET s.value = $version
     SET s.value = CASE WHEN s.value < $version THEN $version ELSE s.value END, s.migrated_at = datetime()
     RETURN s.value AS version`,
    { version: neo4j.int(SCHEMA_VERSION) },
    { database },
  );
  const version = Number(records[0]?.get('version'));
  return { version, created, dropped, existing, migrated, ms: Date.now() - started };
}

/**
 * What the api and the worker do at start instead of migrating: the graph must have been migrated
 * to `needs` (SCHEMA_VERSION) or later, and count money in `reportingCurrency`; SchemaNotMigratedError
 * or a currency error otherwise. Answers the version found.
 */
export async function checkSchema(
  driver: Driver,
  database: string,
  options: { reportingCurrency?: string; needs?: number } = {},
): Promise<{ version: number }> {
  const { reportingCurrency = 'USD', needs = SCHEMA_VERSION } = options;
  const { records } = await driver.executeQuery(
    `OPTIONAL MATCH (v:GraphSetting {name: 'schema_version'})
     OPTIONAL MATCH (c:GraphSetting {name: 'reporting_currency'})
     RETURN v.value AS version, c.value AS currency`,
    {},
    { database, routing: 'READ' },
  );
  const found = records[0]?.get('version') as { toNumber(): number } | number | null | undefined;
  const version = found === null || found === undefined ? null : Number(found);
  if (version === null || version < needs) throw new SchemaNotMigratedError(version, needs);
  const currency = records[0]?.get('currency') as string | null;
  if (currency !== reportingCurrency) throw currencyMismatch(currency ?? '(none)', reportingCurrency);
  return { version };
}

/**
 * Runs the data migrations this database has not had, one process at a time: each is claimed as
 * a `Migration` node (unique on its name) before it runs and marked done after, so an api and a
 * worker starting together never both run one (a second pass over values the first is
 * converting could scale them twice). A process that finds one claimed waits for it.
 */
async function runDataMigrations(
  driver: Driver,
  database: string,
  migrations: DataMigration[],
  options: { reportingCurrency: string },
  leaseMs: number,
): Promise<string[]> {
  const owner = randomUUID();
  const migrated: string[] = [];
  for (const m of migrations) {
    for (;;) {
      const { records } = await driver.executeQuery(
        `MERGE (m:Migration {name: $name})
         ON CREATE SET m.state = 'running', m.owner = $owner, m.claimed_at = datetime()
         WITH m
         // Take over a claim whose process died (it never finished within the lease).
         FOREACH (_ IN CASE WHEN m.state = 'running' AND m.claimed_at < datetime() - duration({milliseconds: $lease})
                  THEN [1] ELSE [] END | SET m.owner = $owner, m.claimed_at = datetime())
         RETURN coalesce(m.state, 'done') AS state, m.owner = $owner AS mine`,
        { name: m.name, owner, lease: leaseMs },
        { database },
      );
      const state = records[0]?.get('state') as string;
      if (state === 'done') break;
      if (records[0]?.get('mine') !== true) {
        // Another process runs it: wait until it is done (looking at least twice a lease).
        await sleep(Math.min(1000, Math.max(10, Math.floor(leaseMs / 2))));
        continue;
      }
      // CALL … IN TRANSACTIONS needs an auto-commit transaction: a session's run, not a transaction function.
      // The claim is renewed while it runs: only a process that died loses it to another.
      const renew = setInterval(
        () => {
          driver
            .executeQuery(
              'MATCH (m:Migration {name: $name, owner: $owner}) SET m.claimed_at = datetime()',
              { name: m.name, owner },
              { database },
            )
            .catch(() => undefined);
        },
        Math.max(10, Math.floor(leaseMs / 3)),
      );
      const session = driver.session({ database });
      try {
        await session.run(m.cypher, m.params(options));
      } finally {
        clearInterval(renew);
        await session.close();
      }
      await driver.executeQuery(
        "MATCH (m:Migration {name: $name, owner: $owner}) SET m.state = 'done', m.applied_at = datetime()",
        { name: m.name, owner },
        { database },
      );
      migrated.push(m.name);
      break;
    }
  }
  return migrated;
}

/**
 * The graph remembers which currency its amounts are minor units of: a process configured with
 * another one refuses to start rather than read every amount 100 times too large or too small.
 */
async function checkReportingCurrency(driver: Driver, database: string, currency: string): Promise<void> {
  const { records } = await driver.executeQuery(
    `MERGE (s:GraphSetting {name: 'reporting_currency'}) ON CREATE SET s.value = $currency
     RETURN s.value AS value`,
    { currency },
    { database },
  );
  const kept = records[0]?.get('value') as string;
  if (kept !== currency) throw currencyMismatch(kept, currency);
}

function currencyMismatch(kept: string, currency: string): Error {
  return new Error(
    `this graph counts money in minor units of ${kept}, but PERSONA_REPORTING_CURRENCY is ${currency}: ` +
      'amounts would be misread; set it back, or convert the graph first',
  );
}

async function existingRuleNames(driver: Driver, database: string): Promise<Set<string>> {
  const [constraints, indexes] = await Promise.all([
    driver.executeQuery('SHOW CONSTRAINTS YIELD name RETURN name', {}, { database }),
    driver.executeQuery('SHOW INDEXES YIELD name RETURN name', {}, { database }),
  ]);
  return new Set([...constraints.records, ...indexes.records].map((r) => r.get('name') as string));
}
