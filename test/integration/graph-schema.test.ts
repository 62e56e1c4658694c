import { randomUUID } from 'node:crypto';
import { int, Neo4jError } from 'neo4j-driver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INITIAL_TRUST_SCORE, migrate, SCHEMA } from '../../graph';
import { PRUNE_CLAIMS_BATCH } from '../../graph/interactions';
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
    const seeks = async (cypher: string, params: Record<string, unknown>): Promise<string> => {
      const res = await g.driver.executeQuery(`EXPLAIN ${cypher}`, params, { database: g.database });
      const ops: string[] = [];
      const walk = (p: { operatorType: string; arguments: { Details?: string }; children: unknown[] }) => {
        ops.push(`${p.operatorType} ${p.arguments.Details ?? ''}`);
        p.children.forEach((c) => walk(c as typeof p));
      };
      walk(res.summary.plan as never);
      return ops.join('\n');
    };
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

  it('moves earned trust onto the login edge: one customer’s device gives it theirs, shared ones nobody', async () => {
    const ids = Array.from({ length: 7 }, () => randomUUID());
    const [shared, a, b, own, owner, bad, victim] = ids as [string, string, string, string, string, string, string];
    // Devices as an earlier version left them: trust on the node, the login edges without any.
    await g.query(
      `CREATE (s:Device {id: $shared, fingerprint: $shared, trust_score: 0.9})
       CREATE (:Customer {id: $a, status: 'active'})-[:LOGGED_IN_FROM {login_count: 3}]->(s)
       CREATE (:Customer {id: $b, status: 'active'})-[:LOGGED_IN_FROM {login_count: 1}]->(s)
       CREATE (o:Device {id: $own, fingerprint: $own, trust_score: 0.8})
       CREATE (:Customer {id: $owner, status: 'active'})-[:LOGGED_IN_FROM {login_count: 2}]->(o)
       CREATE (x:Device {id: $bad, fingerprint: $bad, trust_score: 0.1})
       CREATE (:Customer {id: $victim, status: 'active'})-[:LOGGED_IN_FROM {login_count: 2}]->(x)`,
      { shared, a, b, own, owner, bad, victim },
    );
    await g.query("MATCH (m:Migration {name: 'device-trust-per-customer'}) DELETE m");
    const both = await Promise.all([migrate(g.driver, g.database), migrate(g.driver, g.database)]);
    expect(both.flatMap((r) => r.migrated)).toEqual(['device-trust-per-customer']);
    const rows = await g.query<{ customer: string; device: string; earned: number; own: number }>(
      `MATCH (c:Customer)-[r:LOGGED_IN_FROM]->(d:Device) WHERE c.id IN $ids
       RETURN c.id AS customer, d.id AS device, r.trust_score AS earned, d.trust_score AS own`,
      { ids },
    );
    expect(Object.fromEntries(rows.map((r) => [r.customer, [r.device, r.earned, r.own]]))).toEqual({
      // Whoever earned the shared device's 0.9 is not known: each starts again; the device caps no one.
      [a]: [shared, INITIAL_TRUST_SCORE, 1],
      [b]: [shared, INITIAL_TRUST_SCORE, 1],
      [owner]: [own, 0.8, 1],
      // A device lowered below the start stays so, for everyone on it.
      [victim]: [bad, 0.1, 0.1],
    });
    expect((await migrate(g.driver, g.database)).migrated).toEqual([]);
    await g.query('MATCH (n) WHERE n.id IN $ids DETACH DELETE n', { ids });
  });

  it("gives a device's last IP and user agent to its one customer's login edge, a shared one's to nobody", async () => {
    const [earlier, later, device, own, owner] = [randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    // Devices as an earlier version left them: the last IP and user agent on the node. On a shared
    // one they may be anyone's (a login without an IP kept the one before it).
    await g.query(
      `CREATE (d:Device {id: $device, fingerprint: $device, trust_score: 0.5,
                         last_seen_ip: '198.51.100.99', last_seen_user_agent: 'Last/9'})
       CREATE (:Customer {id: $earlier, status: 'active'})-[:LOGGED_IN_FROM {login_count: 3,
                last_login: datetime() - duration('P2D')}]->(d)
       CREATE (:Customer {id: $later, status: 'active'})-[:LOGGED_IN_FROM {login_count: 1,
                last_login: datetime() - duration('P1D')}]->(d)
       CREATE (o:Device {id: $own, fingerprint: $own, trust_score: 0.5,
                         last_seen_ip: '198.51.100.7', last_seen_user_agent: 'Own/1'})
       CREATE (:Customer {id: $owner, status: 'active'})-[:LOGGED_IN_FROM {login_count: 2,
                last_login: datetime() - duration('P1D')}]->(o)`,
      { device, earlier, later, own, owner },
    );
    await g.query("MATCH (m:Migration {name: 'device-last-seen-to-login-edge'}) DELETE m");
    const both = await Promise.all([migrate(g.driver, g.database), migrate(g.driver, g.database)]);
    expect(both.flatMap((r) => r.migrated)).toEqual(['device-last-seen-to-login-edge']);
    const rows = await g.query<{ customer: string; ip: string | null; ua: string | null; left: string[] }>(
      `MATCH (c:Customer)-[r:LOGGED_IN_FROM]->(d:Device {id: $device})
       RETURN c.id AS customer, r.last_seen_ip AS ip, r.last_seen_user_agent AS ua, keys(d) AS left`,
      { device },
    );
    expect(Object.fromEntries(rows.map((r) => [r.customer, [r.ip, r.ua]]))).toEqual({
      [later]: [null, null],
      [earlier]: [null, null],
    });
    expect(rows[0]?.left.sort()).toEqual(['fingerprint', 'id', 'trust_score']);
    const mine = await g.query<{ ip: string | null; ua: string | null; left: string[] }>(
      `MATCH (:Customer {id: $owner})-[r:LOGGED_IN_FROM]->(d:Device {id: $own})
       RETURN r.last_seen_ip AS ip, r.last_seen_user_agent AS ua, keys(d) AS left`,
      { owner, own },
    );
    expect(mine.map((r) => [r.ip, r.ua])).toEqual([['198.51.100.7', 'Own/1']]);
    expect(mine[0]?.left.sort()).toEqual(['fingerprint', 'id', 'trust_score']);
    expect((await migrate(g.driver, g.database)).migrated).toEqual([]);
    await g.query('MATCH (n) WHERE n.id IN [$device, $earlier, $later, $own, $owner] DETACH DELETE n', {
      device,
      earlier,
      later,
      own,
      owner,
    });
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
