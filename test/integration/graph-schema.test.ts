import { randomUUID } from 'node:crypto';
import { Neo4jError } from 'neo4j-driver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, SCHEMA } from '../../graph';
import { openTestGraph, type TestGraph } from '../support/graph';

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

  it('turns a lifetime value kept as a float into exact minor units, once, however many processes start', async () => {
    const id = randomUUID();
    await g.query("CREATE (:Customer {id: $id, status: 'active', segment: 'New', ltv: 120.5})", { id });
    // As if this graph had never run the data migration.
    await g.query("MATCH (m:Migration {name: 'customer-ltv-minor-units'}) DELETE m");
    // An api and a worker starting together: one of them converts, the other waits for it.
    const both = await Promise.all([
      migrate(g.driver, g.database, { reportingCurrency: 'USD' }),
      migrate(g.driver, g.database, { reportingCurrency: 'USD' }),
    ]);
    expect(both.flatMap((r) => r.migrated)).toEqual(['customer-ltv-minor-units']);
    const [row] = await g.query<{ ltv: unknown; integer: boolean }>(
      'MATCH (c:Customer {id: $id}) RETURN c.ltv AS ltv, c.ltv IS :: INTEGER AS integer',
      { id },
    );
    expect(row).toEqual({ ltv: 12050, integer: true });
    expect((await migrate(g.driver, g.database)).migrated).toEqual([]);
    await g.query('MATCH (c:Customer {id: $id}) DETACH DELETE c', { id });
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

  it('indexes payment-method status and device trust score', async () => {
    const rows = await g.query<{ labels: string[]; properties: string[] }>(
      "SHOW INDEXES YIELD labelsOrTypes AS labels, properties, type WHERE type = 'RANGE' RETURN labels, properties",
    );
    const indexed = rows.map((r) => `${r.labels.join()}(${r.properties.join(',')})`);
    expect(indexed).toContain('PaymentMethod(status)');
    expect(indexed).toContain('Device(trust_score)');
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
