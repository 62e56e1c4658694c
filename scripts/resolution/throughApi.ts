/**
 * Identity resolution measured through the api: the pure half of `npm run bench:resolution`
 * (scripts/bench-resolution.ts). A labelled record as the onboarding request a client sends, the
 * part of it to drop when the api refuses a field, the api's answer read, and the figures of the
 * offline twin (scripts/resolution/offline.ts) computed from the answers alone.
 *
 * What the api shows, and so what the figures can see: whether a sign-up was auto-linked (and to
 * which customer), and its possible matches, most likely first, each with the model's probability:
 * those a shared identifier or device found however unlikely, those the person's keys found at the
 * suggestion threshold. Not the linked customer's probability, not why a proof was refused. The
 * suggestions are the possible matches at the policy's suggestion threshold
 * (POLICY.suggestProbability), as offline's decision lists them. A customer is judged by the
 * people whose records it holds: the on-file records loaded into it (two people's when loading
 * linked one into another's customer, which is counted apart), and the sign-up that created it.
 * Definitions:
 *   - returning: a sign-up whose person has a record loaded on file;
 *   - auto-link precision: answers `matched` to a customer of the sign-up's person, over `matched`
 *     answers (1 when there are none, as offline); recall: such answers over returning sign-ups;
 *   - recall@k (returning sign-ups): auto-linked to a customer of the person, or, not auto-linked,
 *     one among the first k suggestions; a wrong auto-link is a miss at every k (as offline);
 *   - a review: answered `created` with a possible match of probability >= POLICY.reviewProbability
 *     (offline also counts a refused proof of any probability; the answer does not say which that is);
 *   - a household wrong link: the auto-link, or else the first suggestion, is a customer that
 *     does not hold the sign-up's person and holds another member of its household; over sign-ups
 *     with another member of their household on file;
 *   - adversarial: auto-links to a customer not of the person, over the adversarial slice;
 *   - calibration: every (sign-up, possible match) pair the api returned, the probability against
 *     "the customer holds the sign-up's person": expected calibration error over ten bins, and the
 *     pairs in the policy's bands (suggestion, review, auto-link) with Wilson 95 % intervals; the
 *     error apart for the pairs against records on file and against customers that earlier sign-ups
 *     created (a returning person's earlier sign-up, two copies that both differ from the file).
 */
import { POLICY } from '../../resolution/policy';
import { normalisePhone } from '../../resolution/normalise';
import type { LabelledRecord, ResolutionRecord } from '../../resolution/record';
import { summarise, type Latencies } from '../benchKit';
import { wilson, type Figures } from './offline';

// ---- the request -------------------------------------------------------------------------------

type Present<T> = { [K in keyof T]?: Exclude<T[K], null> };

/** The onboarding request a sign-up's client sends (graph/onboardingRequest.ts), without a profile. */
export interface OnboardingBody {
  digital_identifiers: { type: 'email' | 'phone_number'; value: string; is_verified: boolean }[];
  address?: Present<Omit<ResolutionRecord['addresses'][number], 'country'>> & { country: string };
  device?: { fingerprint: string; ip?: string };
  payment_method?: { type: 'card'; token: string } & Present<Omit<ResolutionRecord['cards'][number], 'fingerprint'>>;
  person?: { given_name?: string; family_name?: string; birth_date?: string };
}

/** The api takes at most this many digital identifiers in one onboarding. */
const MAX_IDENTIFIERS = 10;

/** The object without its null (and undefined) fields: the api reads a field it is sent. */
function present<T extends object>(o: T): Present<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null && v !== undefined)) as Present<T>;
}

/**
 * A record as its onboarding: every email and phone with its verified flag, the first address,
 * device and card (`token`, made up: the card's fingerprint is the processor's, which a request
 * cannot carry), and the person's parts it knows. Phones go in international form, read in the
 * record's region, as a client that knows its customer's country sends them (the api takes no
 * national numbers; offline.ts reads them the same way); one it cannot read goes as it is.
 */
export function onboardingPayload(r: LabelledRecord, token: string): OnboardingBody {
  const body: OnboardingBody = {
    digital_identifiers: [
      ...r.emails.map((e) => ({ type: 'email' as const, value: e.value, is_verified: e.verified })),
      ...r.phones.map((p) => ({
        type: 'phone_number' as const,
        value: normalisePhone(p.value, r.region) ?? p.value,
        is_verified: p.verified,
      })),
    ].slice(0, MAX_IDENTIFIERS),
  };
  const [address] = r.addresses;
  if (address) body.address = { ...present(address), country: address.country };
  const [device] = r.devices;
  if (device) body.device = { fingerprint: device.fingerprint, ...present({ ip: device.ip }) };
  const [card] = r.cards;
  if (card) {
    const { fingerprint: _processors, ...details } = card;
    body.payment_method = { type: 'card', token, ...present(details) };
  }
  const person = present({ given_name: r.given_name, family_name: r.family_name, birth_date: r.birth_date });
  if (Object.keys(person).length > 0) body.person = person;
  return body;
}

/**
 * The request without the part holding `field` (as a 400 names it: `person.birth_date`,
 * `digital_identifiers.2.value`, `address.city`), and the name the drop is counted under (indexes
 * as `*`, an identifier's type after it); null when no part holds it (`body`, say). The part is
 * the smallest that stands without the field: a person's part, one identifier, a device's IP; the
 * whole address, device or payment method otherwise (a card without its brand is refused too).
 */
export function dropRefused(body: OnboardingBody, field: string): { body: OnboardingBody; dropped: string } | null {
  const next: OnboardingBody = { ...body, digital_identifiers: [...body.digital_identifiers] };
  const counted = field.replace(/\.\d+(?=\.|$)/g, '.*');
  const identifier = /^digital_identifiers\.(\d+)(?:\.|$)/.exec(field);
  if (identifier) {
    const [removed] = next.digital_identifiers.splice(Number(identifier[1]), 1);
    return removed ? { body: next, dropped: `${counted} (${removed.type})` } : null;
  }
  const part = /^person\.(given_name|family_name|birth_date)$/.exec(field)?.[1] as
    keyof NonNullable<OnboardingBody['person']> | undefined;
  const person = next.person;
  if (part && person?.[part] !== undefined) {
    const { [part]: _gone, ...rest } = person;
    if (Object.keys(rest).length > 0) next.person = rest;
    else delete next.person;
    return { body: next, dropped: counted };
  }
  if (field === 'device.ip' && next.device?.ip !== undefined) {
    next.device = { fingerprint: next.device.fingerprint };
    return { body: next, dropped: counted };
  }
  const whole = /^(person|address|device|payment_method)(?:\.|$)/.exec(field)?.[1] as
    'person' | 'address' | 'device' | 'payment_method' | undefined;
  if (!whole || next[whole] === undefined) return null;
  delete next[whole];
  return { body: next, dropped: counted };
}

// ---- the answer --------------------------------------------------------------------------------

/** One possible match as the api lists it. */
export interface PossibleMatch {
  customer_id: string;
  probability: number;
}

/** The 200 answer of `POST /api/v1/onboarding?wait=true`, possible matches listed (`identity:merge`). */
export interface OnboardingAnswer {
  customer_id: string;
  outcome: 'created' | 'matched';
  possible_match_count: number;
  possible_matches: PossibleMatch[];
  workflow_id: string;
}

/**
 * The answer's body, checked: a figure computed from a misread answer would look like a result.
 * Refuses an answer that counts possible matches without listing them (a token without
 * `identity:merge`) and one that lists bare ids (an api from before the probabilities).
 */
export function readAnswer(body: unknown): OnboardingAnswer {
  const b = (body ?? {}) as Record<string, unknown>;
  const shown = JSON.stringify(body)?.slice(0, 200);
  if (
    typeof b.customer_id !== 'string' ||
    (b.outcome !== 'created' && b.outcome !== 'matched') ||
    typeof b.possible_match_count !== 'number' ||
    typeof b.workflow_id !== 'string'
  )
    throw new Error(`not an onboarding result: ${shown}`);
  const listed = b.possible_matches ?? [];
  if (b.possible_matches === undefined && b.possible_match_count > 0)
    throw new Error(`the answer counts possible matches but lists none (the token needs identity:merge): ${shown}`);
  if (!Array.isArray(listed)) throw new Error(`possible_matches is not a list: ${shown}`);
  const possible = listed.map((m: unknown): PossibleMatch => {
    if (typeof m === 'string')
      throw new Error('possible_matches lists bare ids: this bench needs [{customer_id, probability}]');
    const { customer_id: id, probability: p } = (m ?? {}) as Record<string, unknown>;
    if (typeof id !== 'string' || typeof p !== 'number' || !(p >= 0 && p <= 1))
      throw new Error(`a possible match without a customer id and a probability in [0, 1]: ${shown}`);
    return { customer_id: id, probability: p };
  });
  return {
    customer_id: b.customer_id,
    outcome: b.outcome,
    possible_match_count: b.possible_match_count,
    possible_matches: possible,
    workflow_id: b.workflow_id,
  };
}

// ---- who each customer is ----------------------------------------------------------------------

/** A person whose record a customer holds. */
export interface Holder {
  person: string;
  household: string | null;
}

/** Customer id → the people whose records it holds. */
export type Customers = Map<string, Holder[]>;

const holderOf = (r: LabelledRecord): Holder => ({ person: r.person, household: r.household });

export interface Loaded {
  record: LabelledRecord;
  answer: OnboardingAnswer;
}

export interface LoadSummary {
  customers: Customers;
  created: number;
  /** Linked into a customer holding the same person (a person on file twice). */
  linkedOwn: number;
  /** Linked into a customer of another person: that customer holds both from now on. */
  linkedOther: number;
  /** Linked into a customer this load did not create (one the graph held before). */
  linkedUnknown: number;
}

/**
 * Who each loaded customer is, from the loads' answers in any order: created ones first (loads run
 * concurrently, so a link may answer before the creation it links to), then links.
 */
export function fileLoads(loads: Loaded[]): LoadSummary {
  const customers: Customers = new Map();
  const s = { customers, created: 0, linkedOwn: 0, linkedOther: 0, linkedUnknown: 0 };
  for (const { record, answer } of loads) {
    if (answer.outcome !== 'created') continue;
    s.created++;
    customers.set(answer.customer_id, [...(customers.get(answer.customer_id) ?? []), holderOf(record)]);
  }
  for (const { record, answer } of loads) {
    if (answer.outcome !== 'matched') continue;
    const holders = customers.get(answer.customer_id);
    if (!holders) s.linkedUnknown++;
    else if (holders.some((h) => h.person === record.person)) s.linkedOwn++;
    else s.linkedOther++;
    customers.set(answer.customer_id, [...(holders ?? []), holderOf(record)]);
  }
  return s;
}

// ---- the figures -------------------------------------------------------------------------------

export interface Replayed {
  signUp: LabelledRecord;
  answer: OnboardingAnswer;
  /** From the request the api accepted to its answer. */
  ms: number;
}

/** The offline figures the api can show (no candidates, no scoring time), and what only it shows. */
export type ApiFigures = Omit<Figures, 'candidatesP50' | 'candidatesP99' | 'scoringMsP95'> & {
  correctAutoLinks: number;
  reviews: number;
  possibleMatchPairs: number;
  /** Auto-links and possible matches naming a customer the bench neither loaded nor saw created. */
  unknownCustomers: number;
  /**
   * The returning sign-ups whose customer was neither linked nor among the first 5 possible matches:
   * the record's id in its set, the answer's outcome and the probabilities it listed.
   */
  misses: { record: string; outcome: OnboardingAnswer['outcome']; listed: number[] }[];
  /**
   * Calibration error apart for the pairs against records loaded on file (the pairs offline scores)
   * and against customers earlier sign-ups created (a person twice on file; offline never joins a
   * sign-up to the file).
   */
  calibrationBySource: Record<'onFile' | 'signUps', { pairs: number; error: number }>;
  latencyMs: Latencies;
};

interface Verdict {
  returning: boolean;
  linked: boolean;
  linkedRight: boolean;
  hits: [boolean, boolean, boolean];
  review: boolean;
  household: 'none' | 'right' | 'wrong';
  adversarial: 'none' | 'right' | 'wrong';
  unknown: number;
  pairs: Pair[];
}

/** A (sign-up, possible match) pair: the probability, one person or not, and whom it was against. */
interface Pair {
  p: number;
  y: number;
  /** Against a customer loaded on file (offline scores such pairs), not one an earlier sign-up created. */
  onFile: boolean;
}

interface Context {
  onFile: Customers;
  known: Customers;
  onFilePersons: Set<string>;
  householdPeople: Map<string, Set<string>>;
}

/** What one answer says of the sign-up, by the definitions in the header. */
function judge(r: Replayed, ctx: Context): Verdict {
  const { person, household, slice } = r.signUp;
  const holds = (id: string): boolean => ctx.known.get(id)?.some((h) => h.person === person) ?? false;
  const a = r.answer;
  const linked = a.outcome === 'matched' ? a.customer_id : null;
  const ranked = a.possible_matches.filter((m) => m.probability >= POLICY.suggestProbability).map((m) => m.customer_id);
  const hitAt = (k: number): boolean => (linked ? holds(linked) : ranked.slice(0, k).some(holds));
  const members = household ? ctx.householdPeople.get(household) : undefined;
  let householdVerdict: Verdict['household'] = 'none';
  if (members && [...members].some((p) => p !== person)) {
    const top = linked ?? ranked[0];
    const holders = top ? (ctx.known.get(top) ?? []) : [];
    const wrong = !holders.some((h) => h.person === person) && holders.some((h) => h.household === household);
    householdVerdict = wrong ? 'wrong' : 'right';
  }
  return {
    returning: ctx.onFilePersons.has(person),
    linked: linked !== null,
    linkedRight: linked !== null && holds(linked),
    hits: [hitAt(1), hitAt(3), hitAt(5)],
    review: a.outcome === 'created' && a.possible_matches.some((m) => m.probability >= POLICY.reviewProbability),
    household: householdVerdict,
    adversarial: slice !== 'adversarial' ? 'none' : linked !== null && !holds(linked) ? 'wrong' : 'right',
    unknown: [...(linked ? [linked] : []), ...ranked].filter((id) => !ctx.known.has(id)).length,
    pairs: a.possible_matches.map((m) => ({
      p: m.probability,
      y: holds(m.customer_id) ? 1 : 0,
      onFile: ctx.onFile.has(m.customer_id),
    })),
  };
}

/** Expected calibration error over ten bins, and the pairs in the policy's bands (as offline.ts bins them). */
function calibration(pairs: Pair[]) {
  const bins = Array.from({ length: 10 }, () => ({ p: 0, y: 0, n: 0 }));
  const edges = [POLICY.suggestProbability, POLICY.reviewProbability, POLICY.autoLinkProbability, 1];
  const bands = edges.slice(0, -1).map((from, i) => ({ from, to: edges[i + 1] as number, p: 0, y: 0, n: 0 }));
  for (const { p, y } of pairs) {
    const bin = bins[Math.min(9, Math.floor(p * 10))] as (typeof bins)[number];
    Object.assign(bin, { p: bin.p + p, y: bin.y + y, n: bin.n + 1 });
    const band = bands.find((b) => p >= b.from && p < b.to) ?? bands.at(-1);
    if (band && p >= band.from) Object.assign(band, { p: band.p + p, y: band.y + y, n: band.n + 1 });
  }
  const mean = (b: { p: number; y: number; n: number }) => ({
    predicted: b.n ? b.p / b.n : 0,
    observed: b.n ? b.y / b.n : 0,
    pairs: b.n,
  });
  return {
    calibrationError: bins.reduce((e, b) => e + (b.n ? Math.abs(b.p - b.y) / pairs.length : 0), 0),
    calibrationBins: bins.map(mean),
    policyBands: bands.map((b) => ({ from: b.from, to: b.to, ...mean(b) })),
  };
}

/**
 * The figures of a labelled set's sign-ups from the api's answers: `onFile` says who each loaded
 * customer is (fileLoads); a customer a sign-up created is that sign-up's person's.
 */
export function figuresThroughApi(set: string, onFile: Customers, replayed: Replayed[]): ApiFigures {
  const known: Customers = new Map(onFile);
  for (const { signUp, answer } of replayed)
    if (answer.outcome === 'created' && !known.has(answer.customer_id))
      known.set(answer.customer_id, [holderOf(signUp)]);
  const householdPeople = new Map<string, Set<string>>();
  for (const h of [...onFile.values()].flat())
    if (h.household) householdPeople.set(h.household, (householdPeople.get(h.household) ?? new Set()).add(h.person));
  const ctx = {
    onFile,
    known,
    onFilePersons: new Set([...onFile.values()].flat().map((h) => h.person)),
    householdPeople,
  };
  const verdicts = replayed.map((r) => judge(r, ctx));
  const count = (f: (v: Verdict) => boolean): number => verdicts.filter(f).length;
  const returning = count((v) => v.returning);
  const autoLinks = count((v) => v.linked);
  const correct = count((v) => v.linkedRight);
  const at = (i: 0 | 1 | 2): number => (returning ? count((v) => v.returning && v.hits[i]) / returning : 0);
  const reviews = count((v) => v.review);
  const pairs = verdicts.flatMap((v) => v.pairs);
  return {
    set,
    signUps: replayed.length,
    returning,
    autoLinks,
    correctAutoLinks: correct,
    autoLinkPrecision: autoLinks ? correct / autoLinks : 1,
    autoLinkRecall: returning ? count((v) => v.returning && v.linkedRight) / returning : 0,
    recallAt: { 1: at(0), 3: at(1), 5: at(2) },
    reviews,
    reviewsPer1000: replayed.length ? (1000 * reviews) / replayed.length : 0,
    householdWrongLinks: count((v) => v.household === 'wrong'),
    householdSignUps: count((v) => v.household !== 'none'),
    adversarialAutoLinks: count((v) => v.adversarial === 'wrong'),
    adversarialSignUps: count((v) => v.adversarial !== 'none'),
    possibleMatchPairs: pairs.length,
    unknownCustomers: verdicts.reduce((n, v) => n + v.unknown, 0),
    misses: replayed.flatMap((r, i) =>
      verdicts[i]?.returning && !verdicts[i]?.hits[2]
        ? [
            {
              record: r.signUp.id,
              outcome: r.answer.outcome,
              listed: r.answer.possible_matches.map((m) => m.probability),
            },
          ]
        : [],
    ),
    ...calibration(pairs),
    calibrationBySource: {
      onFile: sourceCalibration(pairs.filter((x) => x.onFile)),
      signUps: sourceCalibration(pairs.filter((x) => !x.onFile)),
    },
    latencyMs: summarise(replayed.map((r) => r.ms)),
  };
}

/** The calibration error of some of the pairs, and how many they are. */
function sourceCalibration(pairs: Pair[]): { pairs: number; error: number } {
  return { pairs: pairs.length, error: pairs.length ? calibration(pairs).calibrationError : 0 };
}

// ---- in words ----------------------------------------------------------------------------------

const pct = (x: number): string => `${(100 * x).toFixed(2)} %`;
const interval = ([lo, hi]: [number, number]): string => `${lo.toFixed(3)}–${hi.toFixed(3)}`;

/** The figures as lines a person reads, worded as offline.ts words its own, so the two compare. */
export function describeApiFigures(f: ApiFigures): string[] {
  const band = (b: ApiFigures['policyBands'][number]): string =>
    `${b.from}–${b.to}: predicted ${b.predicted.toFixed(3)}, one person ${b.observed.toFixed(3)} ` +
    `(${interval(wilson(b.observed, b.pairs))}, ${b.pairs} pairs)`;
  const ms = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '—');
  const bySource = f.calibrationBySource;
  return [
    `${f.set}: ${f.signUps} sign-ups answered, ${f.returning} of people on file`,
    `  auto-links ${f.autoLinks} (${f.correctAutoLinks} right): precision ${f.autoLinkPrecision.toFixed(4)} ` +
      `(${interval(wilson(f.autoLinkPrecision, f.autoLinks))}), recall ${f.autoLinkRecall.toFixed(4)}`,
    `  right customer linked or in top 1/3/5: ${pct(f.recallAt[1])} / ${pct(f.recallAt[3])} / ${pct(f.recallAt[5])}`,
    `  reviews per 1,000 sign-ups: ${f.reviewsPer1000.toFixed(1)} (${f.reviews} created with a possible match ` +
      `>= ${POLICY.reviewProbability}; a proof refused below it is not in the answer)`,
    `  wrong links within a household: ${f.householdWrongLinks} of ${f.householdSignUps} sign-ups with another ` +
      `member on file (${pct(f.householdSignUps ? f.householdWrongLinks / f.householdSignUps : 0)})`,
    `  adversarial: ${f.adversarialAutoLinks} wrong auto-links of ${f.adversarialSignUps} sign-ups`,
    `  calibration error ${f.calibrationError.toFixed(4)} over ${f.possibleMatchPairs} (sign-up, possible match) ` +
      `pairs the api returned (offline scores every candidate: below ${POLICY.suggestProbability} too)`,
    `  of which against records on file ${bySource.onFile.error.toFixed(4)} (${bySource.onFile.pairs} pairs), ` +
      `against customers earlier sign-ups created ${bySource.signUps.error.toFixed(4)} ` +
      `(${bySource.signUps.pairs} pairs; offline has none)`,
    `  at the policy's thresholds: ${f.policyBands.map(band).join('; ')}`,
    `  onboarding, request to answer: p50 ${ms(f.latencyMs.p50)} ms, p95 ${ms(f.latencyMs.p95)} ms, ` +
      `p99 ${ms(f.latencyMs.p99)} ms (${f.latencyMs.count} sign-ups)`,
    ...(f.misses.length
      ? [`  missed (returning, neither linked nor in the top 5): ${f.misses.map((m) => m.record).join(', ')}`]
      : []),
    ...(f.unknownCustomers
      ? [`  ${f.unknownCustomers} links and possible matches named customers this run did not make (counted wrong)`]
      : []),
  ];
}
