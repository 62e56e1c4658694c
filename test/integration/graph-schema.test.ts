import { randomUUID } from 'node:crypto';
import { int, Neo4jError } from 'neo4j-driver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkSchema, migrate, SCHEMA, SCHEMA_VERSION, SchemaNotMigratedError } from '../../graph';
import type { DataMigration } from '../../graph/schema';
import { PRUNE_CLAIMS_BATCH } from '../../graph/interactions';
import { openTestGraph, queryPlan, type TestGraph } from '../support/graph';

let g: TestGraph;
beforeAll(() => {
  g = openTestGraph();
});
afterAll(() => g.close());

describe('schema migration', () => {
  it('is idempotent: a second run creates nothing', async () => {
    const again = await migrate(g.driver, g.database);
    expect(again.created).toEqual([]);
    expect(again.existing.sort()).toEqual(SCHEMA.map((r) => r.name).sort());
  });

  it('runs a data migration once, however many processes start together, and never again', async () => {
    const id = randomUUID();
    const name = `test-migration-${id}`;
    await g.query('CREATE (:MigrationProbe {id: $id, runs: 0})', { id });
    // Counts its own runs: a second pass over the same nodes would show as 2.
    const migration: DataMigration = {
      name,
      cypher: `MATCH (p:MigrationProbe {id: $id}) CALL (p) { SET p.runs = p.runs + 1 } IN TRANSACTIONS OF 10 ROWS`,
      params: () => ({ id }),
    };
    // An api and a worker starting together: one of them runs it, the other waits for it.
    const both = await Promise.all([
      migrate(g.driver, g.database, { dataMigrations: [migration] }),
      migrate(g.driver, g.database, { dataMigrations: [migration] }),
    ]);
    expect(both.flatMap((r) => r.migrated)).toEqual([name]);
    expect((await migrate(g.driver, g.database, { dataMigrations: [migration] })).migrated).toEqual([]);
    const [row] = await g.query<{ runs: unknown }>('MATCH (p:MigrationProbe {id: $id}) RETURN p.runs AS runs', { id });
    expect(Number(row?.runs)).toBe(1);
    await g.query('MATCH (p:MigrationProbe {id: $id}) DELETE p', { id });
    await g.query('MATCH (m:Migration {name: $name}) DELETE m', { name });
  });

  it('records the schema version it applied; a process checks it instead of migrating', async () => {
    const applied = await migrate(g.driver, g.database);
    expect(applied.version).toBeGreaterThanOrEqual(SCHEMA_VERSION);
    expect(await checkSchema(g.driver, g.database)).toEqual({ version: applied.version });
  });

  it('a process refuses a graph migrated to less than it needs, naming the step, and another currency', async () => {
    const check = checkSchema(g.driver, g.database, { needs: SCHEMA_VERSION + 1 });
    await expect(check).rejects.toBeInstanceOf(SchemaNotMigratedError);
    await expect(check).rejects.toThrow(/needs \d+\. Run the migration step first \(`npm run migrate`/);
    await expect(checkSchema(g.driver, g.database, { reportingCurrency: 'JPY' })).rejects.toThrow(
      /counts money in minor units of USD, but PERSONA_REPORTING_CURRENCY is JPY/,
    );
  });

  it('renews a long data migration’s claim: a runner that waits never takes it over while it runs', async () => {
    const id = randomUUID();
    const name = `test-slow-migration-${id}`;
    await g.query('CREATE (:MigrationProbe {id: $id, runs: 0})', { id });
    // 2,000 transactions one after another, each counting a step: two runs would count 4,000.
    const migration: DataMigration = {
      name,
      cypher:
        'UNWIND range(1, 2000) AS x CALL (x) { MATCH (p:MigrationProbe {id: $id}) SET p.runs = p.runs + 1 } ' +
        'IN TRANSACTIONS OF 1 ROWS',
      params: () => ({ id }),
    };
    // A lease of 300 ms: the runner renews it every 100 ms; the other looks every 150 ms.
    const started = Date.now();
    const both = await Promise.all([
      migrate(g.driver, g.database, { dataMigrations: [migration], leaseMs: 300 }),
      migrate(g.driver, g.database, { dataMigrations: [migration], leaseMs: 300 }),
    ]);
    const [row] = await g.query<{ runs: unknown }>('MATCH (p:MigrationProbe {id: $id}) RETURN p.runs AS runs', { id });
    console.log(`the slow migration ran for ${Date.now() - started} ms (lease 300 ms)`);
    expect(both.flatMap((r) => r.migrated)).toEqual([name]);
    expect(Number(row?.runs)).toBe(2000);
    await g.query('MATCH (p:MigrationProbe {id: $id}) DELETE p', { id });
    await g.query('MATCH (m:Migration {name: $name}) DELETE m', { name });
  });

  it('refuses to start on a graph that counts money in another currency', async () => {
    await expect(migrate(g.driver, g.database, { reportingCurrency: 'JPY' })).rejects.toThrow(
      /counts money in minor units of USD, but PERSONA_REPORTING_CURRENCY is JPY/,
    );
  });

  it('leaves the uniqueness constraints DESIGN.md asks for', async () => {
    const rows = await g.query<{ name: string; labels: string[]; properties: string[]; type: string }>(
      'SHOW CONSTRAINTS YIELD name, labelsOrTypes AS labels, properties, type RETURN name, labels, properties, type',
    );
    const unique = rows
      .filter((r) => r.type === 'UNIQUENESS')
      .map((r) => `${r.labels.join()}(${r.properties.join(',')})`);
    for (const label of [
      'Customer',
      'PaymentMethod',
      'Device',
      'Address',
      'DigitalIdentifier',
      'BehavioralProfile',
      'Event',
    ]) {
      expect(unique).toContain(`${label}(id)`);
    }
    expect(unique).toContain('Device(fingerprint)');
    expect(unique).toContain('DigitalIdentifier(type,value)');
  });

  it('keeps only indexes a query seeks, and drops the ones none does', async () => {
    await migrate(g.driver, g.database);
    const rows = await g.query<{ labels: string[]; properties: string[] }>(
      "SHOW INDEXES YIELD labelsOrTypes AS labels, properties, type WHERE type = 'RANGE' RETURN labels, properties",
    );
    const indexed = rows.map((r) => `${r.labels.join()}(${r.properties.join(',')})`);
    // No query starts from these (each is read on nodes reached from one customer): gone.
    for (const unused of ['PaymentMethod(status)', 'Device(trust_score)', 'Customer(status)'])
      expect(indexed).not.toContain(unused);
    for (const used of [
      'Event(customer_id,occurred_at)',
      'Event(occurred_at)',
      'PaymentMethod(status,expiry_year,expiry_month,id)',
      'Interaction(recorded_at)',
    ])
      expect(indexed).toContain(used);
    // Each one is what the query of its reader seeks (the shapes of graph/expiry.ts, graph/feed.ts, graph/events.ts).
    const seeks = (cypher: string, params: Record<string, unknown>) => queryPlan(g, cypher, params);
    expect(
      await seeks(
        `MATCH (p:PaymentMethod) WHERE p.status = 'active' AND p.expiry_year = $year AND p.expiry_month = $month
           AND p.id > $after AND p.id < $before
         WITH p ORDER BY p.status, p.expiry_year, p.expiry_month, p.id LIMIT 10 RETURN p.id`,
        { year: 2030, month: 1, after: '', before: 'z' },
      ),
    ).toMatch(/NodeIndexSeek.*PaymentMethod\(status, expiry_year, expiry_month, id\)/);
    expect(
      await seeks('MATCH (e:Event) WHERE e.occurred_at <= datetime() RETURN e.id ORDER BY e.occurred_at LIMIT 10', {}),
    ).toMatch(/Event\(occurred_at\)/);
    expect(
      await seeks(
        'MATCH (e:Event {customer_id: $id}) WHERE e.occurred_at IS NOT NULL ' +
          'RETURN e.id ORDER BY e.occurred_at DESC LIMIT 10',
        { id: 'x' },
      ),
    ).toMatch(/Event\(customer_id, occurred_at\)/);
    // The prune's batch itself (graph/interactions.ts): a range seek, already in recorded_at order.
    const prune = await seeks(PRUNE_CLAIMS_BATCH, { olderThan: '2001-01-01T00:00:00Z', batch: int(10) });
    expect(prune).toMatch(/NodeIndexSeekByRange.*Interaction\(recorded_at\)/);
    expect(prune).not.toMatch(/^(Partial)?(Sort|Top)/m);
  });

  it(
    'refuses a second DigitalIdentifier with the same (type, value), ' + 'but not the same value under another type',
    async () => {
      const value = `+4420${Math.floor(Math.random() * 1e8)}`;
      await g.query('CREATE (:DigitalIdentifier {id: $id, type: "phone_number", value: $value})', {
        id: randomUUID(),
        value,
      });
      await g.query('CREATE (:DigitalIdentifier {id: $id, type: "email", value: $value})', { id: randomUUID(), value });
      const duplicate = g.query('CREATE (:DigitalIdentifier {id: $id, type: "phone_number", value: $value})', {
        id: randomUUID(),
        value,
      });
      await expect(duplicate).rejects.toBeInstanceOf(Neo4jError);
      await expect(duplicate).rejects.toMatchObject({ code: 'Neo.ClientError.Schema.ConstraintValidationFailed' });
      const [{ n }] = (await g.query<{ n: number }>(
        'MATCH (d:DigitalIdentifier {value: $value}) RETURN count(d) AS n',
        {
          value,
        },
      )) as [{ n: number }];
      expect(n).toBe(2);
    },
  );
});
