/**
 * What identity resolution adds to an onboarding, on the graph as it is (the seeded million:
 * `npm run seed` gives every customer a person and its blocking keys):
 *
 *   npm run bench:onboarding -- --resolution 1000 [--seed 11]
 *
 * Sign-ups alternate between a returning person (a seeded customer's name, birth date and home,
 * with a new email) and a new person (a fresh name and birth date, an address in a seeded
 * customer's postcode). Per sign-up, in this order each time:
 *   - resolution: the onboarding's candidate read and scoring (graph/proofCheck.ts `weighProofTx`,
 *     its blocking keys' holders, the candidates' records, the model) in a read transaction, and
 *     how many candidates the keys named;
 *   - the onboarding's transaction (graph/onboarding.ts `onboardCustomer`) with the person and,
 *     as the baseline, the same sign-up without it (a new email of its own): what a client sent
 *     before `person` existed, which no key names anyone for. The two take turns going first.
 * A tenth of the sign-ups (at most 100) run first uncounted. Prints p50/p95/p99 of each and the
 * difference of the p95s (derived), and writes the figures to bench/results/.
 */
import { randomUUID } from 'node:crypto';
import type { Driver } from 'neo4j-driver';
import neo4j from 'neo4j-driver';
import type { Config } from '../config/env';
import { closeOpenProcess } from '../graph/openProcesses';
import { signUpRecord } from '../graph/customerRecords';
import type { Graph } from '../graph/graph';
import { keyCandidatesTx, personKeys } from '../graph/matchKeys';
import { onboardCustomer } from '../graph/onboarding';
import { prepareOnboarding, type OnboardingPlan } from '../graph/onboardingRequest';
import { weighProofTx } from '../graph/proofCheck';
import { resolveIdentity } from '../graph/resolution';
import { prepare } from '../resolution/compare';
import { f2, summarise, type Latencies } from './benchKit';
import { mulberry32 } from './random';
import { drawPerson } from './resolution/households';

interface OnFile {
  given_name: string;
  family_name: string;
  birth_date: string;
  address: { street1: string; city: string; state: string | null; zip_code: string; country: string };
}

const SAMPLE = `
  MATCH (c:Customer)-[:SHIPPED_TO]->(a:Address)
  WHERE c.given_name IS NOT NULL AND c.status = 'active' AND rand() < $share
  WITH c, a LIMIT toInteger($n)
  RETURN c.given_name AS given_name, c.family_name AS family_name, c.birth_date AS birth_date,
         {street1: a.street1, city: a.city, state: a.state, zip_code: a.zip_code, country: a.country} AS address`;

/** `n` seeded customers with a person and an address, drawn at random. */
async function sample(driver: Driver, database: string, n: number): Promise<OnFile[]> {
  const [row] = (await driver.executeQuery('MATCH (c:Customer) RETURN count(c) AS n', {}, { database })).records;
  const total = Number(row?.get('n') ?? 0);
  const share = Math.min(1, (3 * n) / Math.max(1, total));
  const rows = await driver.executeQuery(SAMPLE, { share, n }, { database });
  return rows.records.map((r) => r.toObject() as unknown as OnFile);
}

function request(person: OnFile | null, address: OnFile['address'], tag: string) {
  return {
    customer: { segment: 'New', ltv: '0' },
    device: { fingerprint: `fp-${randomUUID()}`, ip: '198.51.100.7', user_agent: 'bench' },
    digital_identifiers: [{ type: 'email', value: `bench-${tag}-${randomUUID()}@example.net`, is_verified: true }],
    address: {
      street1: address.street1,
      city: address.city,
      zip_code: address.zip_code,
      country: address.country,
      type: 'shipping',
      ...(address.state ? { state: address.state } : {}),
    },
    ...(person
      ? { person: { given_name: person.given_name, family_name: person.family_name, birth_date: person.birth_date } }
      : {}),
  };
}

/** The resolution alone, read-only: `weighProofTx` as the onboarding runs it, and the keys' candidates. */
async function timeResolution(driver: Driver, g: Graph, database: string, plan: OnboardingPlan) {
  const session = driver.session({ database, defaultAccessMode: neo4j.session.READ });
  try {
    return await session.executeRead(async (tx) => {
      // A new email and a new device: nothing on file for either, as the sign-ups here are built.
      const observations = plan.digital_identifiers.map((i) => ({
        type: i.type,
        value: i.value,
        incomingVerified: i.is_verified,
        onFile: null,
      }));
      const resolved = resolveIdentity(observations, { customerIds: [] }, g.policy.sharedDeviceLimit);
      const started = performance.now();
      const weighed = await weighProofTx(tx, g, plan, resolved, observations, 0);
      const ms = performance.now() - started;
      const keys = personKeys(prepare(signUpRecord(plan), g.policy.defaultPhoneRegion));
      const candidates = (await keyCandidatesTx(tx, keys)).length;
      return { ms, candidates, suggested: weighed.ranked.length };
    });
  } finally {
    await session.close();
  }
}

async function timeOnboarding(g: Graph, plan: OnboardingPlan): Promise<number> {
  const onboardingId = `bench-resolution-${randomUUID()}`;
  const started = performance.now();
  await onboardCustomer(g, plan, { onboardingId, customerId: randomUUID() });
  const ms = performance.now() - started;
  await closeOpenProcess(g, onboardingId);
  return ms;
}

export interface ResolutionBench {
  signUps: number;
  resolution: Latencies;
  candidates: Latencies;
  suggested: number;
  withPerson: Latencies;
  withoutPerson: Latencies;
}

export async function benchResolution(
  driver: Driver,
  g: Graph,
  config: Config,
  opts: { signUps: number; seed: number },
): Promise<ResolutionBench> {
  const database = config.NEO4J_DATABASE;
  const rand = mulberry32(opts.seed);
  const onFile = await sample(driver, database, opts.signUps);
  if (onFile.length < opts.signUps / 2)
    throw new Error(`the graph holds ${onFile.length} customers with a person: seed it first (npm run seed)`);
  console.log(`resolution: ${opts.signUps} sign-ups over ${onFile.length} seeded customers with a person`);
  const resolution: number[] = [];
  const candidates: number[] = [];
  const withPerson: number[] = [];
  const withoutPerson: number[] = [];
  let suggested = 0;
  // The first tenth (at most 100) warm the page cache, the driver and the JIT: run, not counted.
  const warmUp = Math.min(100, Math.floor(opts.signUps / 10));
  for (let i = -warmUp; i < opts.signUps; i++) {
    const base = onFile[(i + onFile.length) % onFile.length] as OnFile;
    const returning = (i + warmUp) % 2 === 0;
    const street = `${1 + Math.floor(rand() * 9999)} ${base.address.street1.split(' ').slice(1).join(' ')}`;
    const person = returning ? base : { ...drawPerson(rand), address: { ...base.address, street1: street } };
    const withIt = prepareOnboarding(g, request(person, person.address, 'person'));
    const without = prepareOnboarding(g, request(null, person.address, 'plain'));
    const r = await timeResolution(driver, g, database, withIt);
    if (i < 0) {
      await timeOnboarding(g, withIt);
      await timeOnboarding(g, without);
      continue;
    }
    resolution.push(r.ms);
    candidates.push(r.candidates);
    if (r.suggested > 0) suggested++;
    if (i % 2 === 0) {
      withPerson.push(await timeOnboarding(g, withIt));
      withoutPerson.push(await timeOnboarding(g, without));
    } else {
      withoutPerson.push(await timeOnboarding(g, without));
      withPerson.push(await timeOnboarding(g, withIt));
    }
    if ((i + 1) % 100 === 0) console.log(`resolution: ${i + 1}/${opts.signUps}`);
  }
  return {
    signUps: opts.signUps,
    resolution: summarise(resolution),
    candidates: summarise(candidates),
    suggested,
    withPerson: summarise(withPerson),
    withoutPerson: summarise(withoutPerson),
  };
}

export function printResolution(b: ResolutionBench): void {
  const row = (name: string, l: Latencies) => `| ${name} | ${f2(l.p50)} / ${f2(l.p95)} / ${f2(l.p99)} ms |`;
  console.log(
    [
      '',
      `| ${b.signUps} sign-ups (half returning, half new) | p50 / p95 / p99 |`,
      '| --- | --- |',
      row('resolution: candidate read and scoring (read transaction)', b.resolution),
      row('onboarding transaction, with the person', b.withPerson),
      row('onboarding transaction, the same sign-up without it (baseline)', b.withoutPerson),
      `| added at p95 (derived: with − without) | ${f2(b.withPerson.p95 - b.withoutPerson.p95)} ms |`,
      `| candidates the keys named | ${[b.candidates.p50, b.candidates.p95, b.candidates.p99].join(' / ')} ` +
        `(max ${b.candidates.max}) |`,
      `| sign-ups with a possible match | ${b.suggested} |`,
    ].join('\n'),
  );
}
