/**
 * The identity graph's schema, applied by an idempotent migration run as a deploy step
 * (`npm run migrate`: scripts/migrate.ts; running it twice, or from two places at once, changes
 * nothing). It records the schema version it applied; the api and the worker only check it
 * (`checkSchema`) and refuse to serve a graph older than the version they need.
 *
 * Neo4j 5 Community supports property uniqueness constraints on one property and on several
 * (composite); node-key and existence constraints are Enterprise-only. So (type, value) on
 * DigitalIdentifier is a composite uniqueness constraint, and every constraint below works on
 * Community. Each uniqueness constraint is backed by a range index, so lookups by id,
 * fingerprint and (type, value) need no extra index.
 */
import neo4j, { Neo4jError, type Driver } from 'neo4j-driver';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

export interface SchemaRule {
  name: string;
  kind: 'constraint' | 'index';
  cypher: string;
}

const NODE_LABELS = [
  'Customer',
  'PaymentMethod',
  'Device',
  'Address',
  'DigitalIdentifier',
  'BehavioralProfile',
  'Event',
  'RelayCheckpoint',
  // A Kafka partition's writer of interactions: the offset its last batch committed with (graph/ingestOffsets.ts).
  'IngestOffset',
  // An interaction's claim (`<customer id>:<sender's id>`, graph/interactions.ts): recorded once.
  'Interaction',
  // A customer's history key (`customer:<id>`), or an onboarding's own (its workflow id): graph/historyKeys.ts.
  'HistoryKey',
  // A customer's open process (`id` = the workflow id, graph/openProcesses.ts).
  'OpenProcess',
  // The event log itself (one node, id `persona`): its epoch, moved on by every restore (backup/).
  'EventLog',
  // A gateway charge whose recovery was still running when the reconciliation saw it (`id` = the
  // payment id, graph/reconciliation.ts): looked at again by every run until it is settled.
  'ReconciliationPending',
  // The charge ledger (graph/chargeLedger.ts): a failed payment's recovery (`id` = the payment id)
  // and each charge it attempted (`id` = the idempotency key), kept whatever happens to the wallet.
  'Recovery',
  'ChargeAttempt',
  // The event log's sequencer (one node, id `persona`): the last number it gave (graph/sequencer.ts).
  'EventSequencer',
] as const;

const snake = (label: string): string => label.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();

export const SCHEMA: SchemaRule[] = [
  ...NODE_LABELS.map((label) => ({
    name: `${snake(label)}_id_unique`,
    kind: 'constraint' as const,
    cypher: `CREATE CONSTRAINT ${snake(label)}_id_unique IF NOT EXISTS FOR (n:${label}) REQUIRE n.id IS UNIQUE`,
  })),
  // A card's charges as the networks count them (graph/cardHistory.ts), one node per fingerprint.
  {
    name: 'card_identity_fingerprint_unique',
    kind: 'constraint',
    cypher:
      'CREATE CONSTRAINT card_identity_fingerprint_unique IF NOT EXISTS ' +
      'FOR (k:CardIdentity) REQUIRE k.fingerprint IS UNIQUE',
  },
  {
    name: 'device_fingerprint_unique',
    kind: 'constraint',
    cypher: 'CREATE CONSTRAINT device_fingerprint_unique IF NOT EXISTS FOR (d:Device) REQUIRE d.fingerprint IS UNIQUE',
  },
  {
    name: 'digital_identifier_type_value_unique',
    kind: 'constraint',
    cypher:
      'CREATE CONSTRAINT digital_identifier_type_value_unique IF NOT EXISTS FOR (d:DigitalIdentifier) ' +
      'REQUIRE (d.type, d.value) IS UNIQUE',
  },
  // A fact written with an idempotency key (an onboarding, a notification, a fraud outcome) is
  // recorded once (graph/facts.ts); a fact without one is keyed by its type and event id.
  {
    name: 'fact_key_unique',
    kind: 'constraint',
    cypher: 'CREATE CONSTRAINT fact_key_unique IF NOT EXISTS FOR (f:Fact) REQUIRE f.key IS UNIQUE',
  },
  // A customer's facts of one type, newest first (fraud outcomes, merges, contests): one seek.
  {
    name: 'fact_customer_type_at',
    kind: 'index',
    cypher: 'CREATE INDEX fact_customer_type_at IF NOT EXISTS FOR (f:Fact) ON (f.customer_id, f.type, f.at)',
  },
  // The facts that name another party: the possible matches that name a customer, the reversals
  // of an outcome (graph/matchEvidence.ts, graph/fraud.ts).
  {
    name: 'fact_about_type_at',
    kind: 'index',
    cypher: 'CREATE INDEX fact_about_type_at IF NOT EXISTS FOR (f:Fact) ON (f.about, f.type, f.at)',
  },
  // The reconciliation pages through a window's recoveries in time order (graph/reconciliation.ts).
  {
    name: 'fact_type_at',
    kind: 'index',
    cypher: 'CREATE INDEX fact_type_at IF NOT EXISTS FOR (f:Fact) ON (f.type, f.at)',
  },
  // The prune finds the transient events (not in a customer's history) consumers have passed,
  // oldest first: only they have the property, so the index holds nothing else (graph/eventPrune.ts).
  {
    name: 'event_transient_occurred_at',
    kind: 'index',
    cypher: 'CREATE INDEX event_transient_occurred_at IF NOT EXISTS FOR (e:Event) ON (e.transient, e.occurred_at)',
  },
  // The expiry scan pages through active cards in (expiry year, month, id) order straight off
  // this index: each page is one range seek, however large the graph.
  {
    name: 'payment_method_expiry_scan',
    kind: 'index',
    cypher:
      'CREATE INDEX payment_method_expiry_scan IF NOT EXISTS FOR (p:PaymentMethod) ' +
      'ON (p.status, p.expiry_year, p.expiry_month, p.id)',
  },
  // A notification is claimed under its key before it is sent, so it goes out once.
  {
    name: 'notification_key_unique',
    kind: 'constraint',
    cypher: 'CREATE CONSTRAINT notification_key_unique IF NOT EXISTS FOR (n:Notification) REQUIRE n.key IS UNIQUE',
  },
  // A data migration (below) runs once: its name is recorded when it is done.
  {
    name: 'migration_name_unique',
    kind: 'constraint',
    cypher: 'CREATE CONSTRAINT migration_name_unique IF NOT EXISTS FOR (m:Migration) REQUIRE m.name IS UNIQUE',
  },
  // The graph's own settings (the schema version, the reporting currency): one node per name.
  {
    name: 'graph_setting_name_unique',
    kind: 'constraint',
    cypher: 'CREATE CONSTRAINT graph_setting_name_unique IF NOT EXISTS FOR (s:GraphSetting) REQUIRE s.name IS UNIQUE',
  },
  // Each new onboarding key removes expired ones (graph/historyKeys.ts): found by kind and age.
  {
    name: 'history_key_kind_created_at',
    kind: 'index',
    cypher: 'CREATE INDEX history_key_kind_created_at IF NOT EXISTS FOR (k:HistoryKey) ON (k.kind, k.created_at)',
  },
  // A customer's history (newest first) and the change feed read events by customer and time.
  {
    name: 'event_customer_occurred_at',
    kind: 'index',
    cypher: 'CREATE INDEX event_customer_occurred_at IF NOT EXISTS FOR (e:Event) ON (e.customer_id, e.occurred_at)',
  },
  // A customer's history reads the device-level events (a shared device's trust change) of its
  // devices by device and time.
  {
    name: 'event_device_occurred_at',
    kind: 'index',
    cypher: 'CREATE INDEX event_device_occurred_at IF NOT EXISTS FOR (e:Event) ON (e.device_id, e.occurred_at)',
  },
  // The event log in commit order (graph/sequencer.ts): a reader reads a range of numbers, and no
  // number is given twice.
  {
    name: 'event_log_seq_unique',
    kind: 'constraint',
    cypher: 'CREATE CONSTRAINT event_log_seq_unique IF NOT EXISTS FOR (e:Event) REQUIRE e.log_seq IS UNIQUE',
  },
  {
    name: 'event_occurred_at',
    kind: 'index',
    cypher: 'CREATE INDEX event_occurred_at IF NOT EXISTS FOR (e:Event) ON (e.occurred_at)',
  },
  // A merge points the tombstones of earlier merges at its survivor, an erasure of a survivor finds
  // the records merged into it (graph/identityMerge.ts, graph/erasure.ts): a seek, not a scan of customers.
  {
    name: 'customer_merged_into',
    kind: 'index',
    cypher: 'CREATE INDEX customer_merged_into IF NOT EXISTS FOR (c:Customer) ON (c.merged_into)',
  },
  // A retried erasure finds the merged records its first attempt erased already (graph/erasure.ts).
  {
    name: 'customer_erased_with',
    kind: 'index',
    cypher: 'CREATE INDEX customer_erased_with IF NOT EXISTS FOR (c:Customer) ON (c.erased_with)',
  },
  // A customer's possible matches (graph/matchEvidence.ts): the customers with the same card (the
  // processor's fingerprint) or the same address (its normalised key), each a seek from one of the
  // customer's own.
  {
    name: 'payment_method_card_fingerprint',
    kind: 'index',
    cypher: 'CREATE INDEX payment_method_card_fingerprint IF NOT EXISTS FOR (p:PaymentMethod) ON (p.card_fingerprint)',
  },
  {
    name: 'address_match_key',
    kind: 'index',
    cypher: 'CREATE INDEX address_match_key IF NOT EXISTS FOR (a:Address) ON (a.match_key)',
  },
  // The charge ledger: an erasure or a merge finds a customer's recoveries and attempts, and the
  // per-method cap counts a method's recent attempts, each with one seek.
  {
    name: 'recovery_customer',
    kind: 'index',
    cypher: 'CREATE INDEX recovery_customer IF NOT EXISTS FOR (r:Recovery) ON (r.customer_id)',
  },
  {
    name: 'charge_attempt_customer',
    kind: 'index',
    cypher: 'CREATE INDEX charge_attempt_customer IF NOT EXISTS FOR (a:ChargeAttempt) ON (a.customer_id)',
  },
  {
    name: 'charge_attempt_method_created',
    kind: 'index',
    cypher:
      'CREATE INDEX charge_attempt_method_created IF NOT EXISTS FOR (a:ChargeAttempt) ' +
      'ON (a.payment_method_id, a.created_at)',
  },
  // The daily prune deletes interaction claims older than the retention, oldest first, one range
  // seek per batch (graph/interactions.ts `pruneInteractionClaims`).
  {
    name: 'interaction_recorded_at',
    kind: 'index',
    cypher: 'CREATE INDEX interaction_recorded_at IF NOT EXISTS FOR (i:Interaction) ON (i.recorded_at)',
  },
];

/** Rules an earlier release created and this one no longer wants: dropped if present. */
export const RETIRED_SCHEMA: SchemaRule[] = [
  // Version 1 kept idempotency keys and possible matches on events; facts keep them now (graph/facts.ts).
  {
    name: 'event_idempotency_key_unique',
    kind: 'constraint',
    cypher:
      'CREATE CONSTRAINT event_idempotency_key_unique IF NOT EXISTS FOR (e:Event) REQUIRE e.idempotency_key IS UNIQUE',
  },
  {
    name: 'event_matched_customer_occurred_at',
    kind: 'index',
    cypher:
      'CREATE INDEX event_matched_customer_occurred_at IF NOT EXISTS FOR (e:Event) ' +
      'ON (e.matched_customer_id, e.occurred_at)',
  },
];

/**
 * The schema this code reads and writes. Bump it with every change to SCHEMA, RETIRED_SCHEMA or
 * DATA_MIGRATIONS (graph/schema.test.ts holds their fingerprint and fails until you do): a process
 * refuses a graph migrated to an older version, and serves one migrated to a newer version (a
 * release's migration is additive; see docs/deployment.md, "The migration step").
 */
export const SCHEMA_VERSION = 4;

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
