/**
 * Seeds a realistic synthetic identity graph:
 *   npm run seed -- --customers 1000000 [--batch 2000] [--concurrency 2] [--seed 7]
 *
 * Per customer: 1–4 payment methods (real brand mix, expiry spread over past and coming years,
 * expired cards marked expired, one default), 1–3 devices with a spread of trust scores (and
 * some devices shared by a household), 1–2 addresses, an email (mostly verified) and often a
 * phone, a person (given and family name, date of birth: scripts/resolution/households.ts's
 * distributions) with its blocking keys (graph/matchKeys.ts), and the CustomerCreated event. Tokens
 * are encrypted like any other. Written in batches of UNWINDs, one transaction per batch, a few
 * batches at once; prints progress and customers/s.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import neo4j from 'neo4j-driver';
import { ConfigError, loadConfig } from '../config/env';
import { addressMatchKey, createDriver, ltvFields, migrate, TokenCipher } from '../graph';
import { heldKeys } from '../graph/matchKeys';
import { prepare } from '../resolution/compare';
import { currencyExponent } from '../payments/money';
import { mulberry32 } from './random';
import { drawPerson } from './resolution/households';

// ---- deterministic randomness --------------------------------------------------------

function pick<T>(rand: () => number, weighted: [T, number][]): T {
  const total = weighted.reduce((s, [, w]) => s + w, 0);
  let r = rand() * total;
  for (const [value, w] of weighted) if ((r -= w) < 0) return value;
  return (weighted.at(-1) as [T, number])[0];
}

const BRANDS: [string, number][] = [
  ['visa', 52],
  ['mastercard', 30],
  ['amex', 11],
  ['discover', 7],
];
const SEGMENTS: [string, number][] = [
  ['Subscriber', 55],
  ['New', 28],
  ['Dormant', 10],
  ['VIP', 7],
];
const DOMAINS = ['gmail.com', 'outlook.com', 'yahoo.com', 'icloud.com', 'proton.me', 'fastmail.com'];
const CITIES: [string, string, string][] = [
  ['Austin', 'TX', 'US'],
  ['Leeds', '', 'GB'],
  ['Toronto', 'ON', 'CA'],
  ['Berlin', '', 'DE'],
  ['Seattle', 'WA', 'US'],
];

// ---- one batch ------------------------------------------------------------------------

type Row = Record<string, unknown>;
interface CustomerRow extends Row {
  pms: Row[];
  devices: Row[];
  shared: Row[];
  addresses: Row[];
  identifiers: Row[];
  keys: string[];
}

function makeBatch(
  start: number,
  size: number,
  rand: () => number,
  cipher: TokenCipher,
  sharedPool: string[],
  now: Date,
  currency: string,
  region: string,
): CustomerRow[] {
  const rows: CustomerRow[] = [];
  const thisMonth = now.getUTCFullYear() * 12 + now.getUTCMonth() + 1;
  const daysAgo = (max: number) => now.getTime() - Math.floor(rand() * max * 86_400_000);
  for (let i = start; i < start + size; i++) {
    const id = randomUUID();
    const created = daysAgo(1500);
    const segment = pick(rand, SEGMENTS);
    // A log-normal spread of lifetime values, in whole minor units of the reporting currency.
    const ltvMinor = Math.round(
      Math.exp(4 + rand() * 4 + (segment === 'VIP' ? 2 : 0)) * 10 ** currencyExponent(currency),
    );
    const person = drawPerson(rand);
    const row: CustomerRow = {
      id,
      ...person,
      status: rand() < 0.03 ? 'suspended' : 'active',
      segment,
      ltv_minor: ltvMinor,
      acquisition_date: new Date(created).toISOString().slice(0, 10),
      created,
      event_id: randomUUID(),
      payload: JSON.stringify({ segment, status: 'active', ...ltvFields(ltvMinor, currency), source: 'seed' }),
      pms: [],
      devices: [],
      shared: [],
      addresses: [],
      identifiers: [],
      keys: [],
    };
    rows.push(row);

    const pmCount = pick(rand, [
      [1, 50],
      [2, 30],
      [3, 15],
      [4, 5],
    ]);
    let defaultGiven = false;
    for (let p = 0; p < pmCount; p++) {
      const pmId = randomUUID();
      const type = pick(rand, [
        ['card', 85],
        ['digital_wallet', 10],
        ['bank_account', 5],
      ]);
      const isCard = type === 'card';
      const expiryYear = now.getUTCFullYear() - 1 + Math.floor(rand() * 7);
      const expiryMonth = 1 + Math.floor(rand() * 12);
      const expired = isCard && expiryYear * 12 + expiryMonth < thisMonth;
      const status = expired
        ? 'expired'
        : pick(rand, [
            ['active', 94],
            ['inactive', 3],
            ['failed', 2],
            ['compromised', 1],
          ]);
      const isDefault: boolean = !defaultGiven && status === 'active';
      defaultGiven ||= isDefault;
      const firstUsed = daysAgo(900);
      row.pms.push({
        id: pmId,
        type,
        status,
        token: cipher.encrypt(`tok_${type}_${pmId.slice(0, 8)}`, pmId),
        brand: isCard ? pick(rand, BRANDS) : null,
        last_four: isCard ? String(Math.floor(rand() * 10_000)).padStart(4, '0') : null,
        expiry_month: isCard ? expiryMonth : null,
        expiry_year: isCard ? expiryYear : null,
        is_default: isDefault,
        first_used: firstUsed,
        last_used: daysAgo(120),
      });
    }

    const deviceCount = pick(rand, [
      [1, 60],
      [2, 30],
      [3, 10],
    ]);
    for (let d = 0; d < deviceCount; d++) {
      const login = { login_count: 1 + Math.floor(rand() * 200), first_login: daysAgo(900), last_login: daysAgo(30) };
      if (d === 0 && rand() < 0.03 && sharedPool.length > 0) {
        row.shared.push({ ...login, device_id: sharedPool[Math.floor(rand() * sharedPool.length)] });
        continue;
      }
      row.devices.push({
        ...login,
        id: randomUUID(),
        fingerprint: `fp_${randomUUID().replace(/-/g, '')}`,
        // Most devices earn trust over time; some never do, a few are known bad.
        trust_score:
          Math.round(
            pick(rand, [
              [0.55 + rand() * 0.45, 70],
              [0.2 + rand() * 0.45, 25],
              [rand() * 0.2, 5],
            ]) * 100,
          ) / 100,
        ip: `198.51.${Math.floor(rand() * 255)}.${Math.floor(rand() * 255)}`,
        user_agent: pick(rand, [
          ['Mozilla/5.0 (iPhone)', 40],
          ['Mozilla/5.0 (Windows NT 10.0)', 35],
          ['Mozilla/5.0 (Macintosh)', 15],
          ['Mozilla/5.0 (Linux; Android)', 10],
        ]),
      });
    }

    const [city, state, country] = CITIES[Math.floor(rand() * CITIES.length)] as [string, string, string];
    for (let a = 0; a < (rand() < 0.8 ? 1 : 2); a++) {
      row.addresses.push({
        id: randomUUID(),
        street1: `${1 + Math.floor(rand() * 9999)} ${pick(rand, [
          ['Main', 1],
          ['Oak', 1],
          ['High', 1],
          ['Park', 1],
        ])} St`,
        city,
        state: state || null,
        zip_code: String(10_000 + Math.floor(rand() * 89_999)),
        country,
        type: a === 0 ? 'shipping' : 'billing',
        is_default: a === 0,
        last_shipped: daysAgo(200),
      });
    }

    if (rand() < 0.95) {
      row.identifiers.push({
        id: randomUUID(),
        type: 'email',
        value: `customer${i}@${DOMAINS[i % DOMAINS.length]}`,
        is_verified: rand() < 0.8,
      });
    }
    if (rand() < 0.6) {
      row.identifiers.push({
        id: randomUUID(),
        type: 'phone_number',
        value: `+4479${String(i).padStart(8, '0')}`,
        is_verified: rand() < 0.7,
      });
    }
    // The keys an onboarding of this person would have linked (graph/onboarding.ts).
    row.keys = heldKeys(
      prepare(
        {
          id,
          ...person,
          emails: row.identifiers
            .filter((i) => i.type === 'email')
            .map((i) => ({ value: String(i.value), verified: Boolean(i.is_verified) })),
          phones: [],
          addresses: row.addresses.map((a) => ({
            street1: String(a.street1),
            street2: null,
            city: a.city as string,
            state: (a.state as string | null) ?? null,
            zip_code: a.zip_code as string,
            country: String(a.country),
          })),
          devices: [],
          cards: [],
        },
        region,
      ),
    );
  }
  return rows;
}

/**
 * One statement per batch: each customer row carries its own methods, devices, addresses and
 * identifiers, so nothing is looked up again by id. Times travel as epoch milliseconds.
 */
const CYPHER = {
  batch: `
    UNWIND $rows AS r
    CREATE (c:Customer {id: r.id, status: r.status, segment: r.segment, ltv: toInteger(r.ltv_minor),
                        given_name: r.given_name, family_name: r.family_name, birth_date: r.birth_date,
                        acquisition_date: date(r.acquisition_date),
                        created_at: datetime({epochMillis: toInteger(r.created)}),
                        updated_at: datetime({epochMillis: toInteger(r.created)})})
    CREATE (:Event {id: r.event_id, type: 'CustomerCreated', customer_id: r.id,
                    occurred_at: datetime({epochMillis: toInteger(r.created)}), seq: 0, payload: r.payload})
    WITH c, r
    CALL (c, r) {
      UNWIND r.pms AS m
      CREATE (p:PaymentMethod {id: m.id, type: m.type, status: m.status, token: m.token, brand: m.brand,
                               last_four: m.last_four, expiry_month: m.expiry_month, expiry_year: m.expiry_year,
                               created_at: datetime({epochMillis: toInteger(m.first_used)}),
                               updated_at: datetime({epochMillis: toInteger(m.first_used)})})
      CREATE (c)-[:HAS_PAYMENT_METHOD {is_default: m.is_default,
                                       first_used: datetime({epochMillis: toInteger(m.first_used)}),
                                       last_used: datetime({epochMillis: toInteger(m.last_used)})}]->(p)
    }
    CALL (c, r) {
      UNWIND r.devices AS v
      // A known-bad device is known so for everyone on it (its own trust); the rest is what this
      // customer earned on it (their edge), the device capping no one.
      CREATE (d:Device {id: v.id, fingerprint: v.fingerprint,
                        trust_score: CASE WHEN v.trust_score < 0.2 THEN v.trust_score ELSE 1.0 END,
                        created_at: datetime({epochMillis: toInteger(v.first_login)}),
                        updated_at: datetime({epochMillis: toInteger(v.first_login)})})
      // What a login showed is the customer's: on its edge, never on the device others may share.
      CREATE (c)-[:LOGGED_IN_FROM {login_count: v.login_count, last_seen_ip: v.ip, last_seen_user_agent: v.user_agent,
                                   trust_score: v.trust_score,
                                   first_login: datetime({epochMillis: toInteger(v.first_login)}),
                                   last_login: datetime({epochMillis: toInteger(v.last_login)})}]->(d)
    }
    CALL (c, r) {
      UNWIND r.shared AS v
      MATCH (d:Device {id: v.device_id})
      CREATE (c)-[:LOGGED_IN_FROM {login_count: v.login_count,
                                   first_login: datetime({epochMillis: toInteger(v.first_login)}),
                                   last_login: datetime({epochMillis: toInteger(v.last_login)})}]->(d)
    }
    CALL (c, r) {
      UNWIND r.addresses AS a
      CREATE (n:Address {id: a.id, street1: a.street1, city: a.city, state: a.state, zip_code: a.zip_code,
                         country: a.country, type: a.type, is_default: a.is_default,
                         created_at: datetime({epochMillis: toInteger(a.last_shipped)}),
                         updated_at: datetime({epochMillis: toInteger(a.last_shipped)})})
      SET n.match_key = ${addressMatchKey('n')}
      CREATE (c)-[:SHIPPED_TO {first_shipped: datetime({epochMillis: toInteger(a.last_shipped)}),
                               last_shipped: datetime({epochMillis: toInteger(a.last_shipped)})}]->(n)
    }
    CALL (c, r) {
      UNWIND r.identifiers AS i
      CREATE (n:DigitalIdentifier {id: i.id, type: i.type, value: i.value, is_verified: i.is_verified,
                                   created_at: datetime({epochMillis: toInteger(r.created)}),
                                   updated_at: datetime({epochMillis: toInteger(r.created)})})
      CREATE (c)-[:HAS_DIGITAL_IDENTIFIER]->(n)
    }
    CALL (c, r) {
      UNWIND r.keys AS key
      MERGE (k:MatchKey {key: key})
      CREATE (c)-[:KEYED]->(k)
    }`,
  sharedPool: `
    UNWIND $rows AS r
    CREATE (:Device {id: r.id, fingerprint: r.fingerprint, trust_score: r.trust_score,
                     created_at: datetime(), updated_at: datetime()})`,
} as const;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      customers: { type: 'string', default: '10000' },
      batch: { type: 'string', default: '2000' },
      concurrency: { type: 'string', default: '2' },
      seed: { type: 'string', default: '7' },
    },
  });
  const total = Number(values.customers);
  const batchSize = Number(values.batch);
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(total) || total < 1) throw new Error('--customers must be a positive integer');
  const config = loadConfig();
  const driver = createDriver(config, { maxConnectionPoolSize: concurrency + 2 });
  const cipher = new TokenCipher(config.tokenKeys);
  const rand = mulberry32(Number(values.seed));
  const now = new Date();
  try {
    await migrate(driver, config.NEO4J_DATABASE, { reportingCurrency: config.PERSONA_REPORTING_CURRENCY });
    const existing = (
      await driver.executeQuery('MATCH (c:Customer) RETURN count(c) AS n', {}, { database: config.NEO4J_DATABASE })
    ).records[0]?.get('n') as number;
    // Index offsets past what is there, so identifier values of a second run never collide.
    const offset = Number(existing) + Math.floor(rand() * 1e6) * 1000;
    console.log(
      `seed: ${total.toLocaleString()} customers in batches of ${batchSize} (${concurrency} at once) ` +
        `on ${config.NEO4J_URI}; ${Number(existing).toLocaleString()} customers there already`,
    );

    const pool = Array.from({ length: Math.max(10, Math.floor(total / 500)) }, () => ({
      id: randomUUID(),
      fingerprint: `fp_shared_${randomUUID().replace(/-/g, '')}`,
      trust_score: Math.round((0.3 + rand() * 0.6) * 100) / 100,
    }));
    await driver.executeQuery(CYPHER.sharedPool, { rows: pool }, { database: config.NEO4J_DATABASE });
    const sharedPool = pool.map((d) => d.id);

    const started = Date.now();
    let next = 0;
    let done = 0;
    let lastReport = 0;
    const worker = async (): Promise<void> => {
      while (next < total) {
        const start = next;
        const size = Math.min(batchSize, total - start);
        next += size;
        const batch = makeBatch(
          offset + start,
          size,
          rand,
          cipher,
          sharedPool,
          now,
          config.PERSONA_REPORTING_CURRENCY,
          config.PERSONA_DEFAULT_PHONE_REGION,
        );
        const session = driver.session({ database: config.NEO4J_DATABASE, defaultAccessMode: neo4j.session.WRITE });
        try {
          await session.executeWrite((tx) => tx.run(CYPHER.batch, { rows: batch }));
        } finally {
          await session.close();
        }
        done += size;
        const elapsed = (Date.now() - started) / 1000;
        if (Date.now() - lastReport > 2000 || done === total) {
          lastReport = Date.now();
          const rate = done / elapsed;
          const eta = (total - done) / rate;
          console.log(
            `seed: ${done.toLocaleString()}/${total.toLocaleString()} (${((100 * done) / total).toFixed(1)}%)  ` +
              `${Math.round(rate).toLocaleString()} customers/s  eta ${eta.toFixed(0)}s`,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const seconds = (Date.now() - started) / 1000;
    console.log(
      `seed: done — ${total.toLocaleString()} customers in ${seconds.toFixed(1)}s = ` +
        `${Math.round(total / seconds).toLocaleString()} customers/s`,
    );
  } finally {
    await driver.close();
  }
}

main().catch((err: unknown) => {
  console.error(
    err instanceof ConfigError ? err.message : `seed failed: ${err instanceof Error ? err.message : String(err)}`,
  );
  process.exit(1);
});
