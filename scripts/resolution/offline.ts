/**
 * Identity resolution on a labelled set, offline: the model, blocking and policy of resolution/
 * run over records in memory (no services), to estimate a table and to measure it. What the
 * api does against the graph is measured by `npm run bench:resolution`; this is the same decision
 * on the same records, without the graph's read.
 *
 * Figures (per set): auto-link precision and recall; for sign-ups whose person is on file, the
 * right customer auto-linked or among the top 1, 3 and 5 possible matches; reviews per 1,000
 * sign-ups; wrong links (an auto-link or the top possible match) to another member of the
 * sign-up's household; auto-links on the adversarial slice; calibration (expected calibration
 * error over the scored candidate pairs, ten bins); candidates per sign-up.
 */
import { performance } from 'node:perf_hooks';
import { BlockingIndex } from '../../resolution/blocking';
import {
  compareRecords,
  prepare,
  type Agreement,
  type Comparison,
  type PreparedRecord,
} from '../../resolution/compare';
import { estimateLevels, fitCalibration, FREQUENCY_LEVELS, type CalibrationSample } from '../../resolution/estimate';
import {
  calibrationFeatures,
  offsetLogOdds,
  scoreAgreements,
  UNCALIBRATED,
  type Frequencies,
  type MatchScore,
  type ModelTable,
} from '../../resolution/model';
import { decide, POLICY, type Decision, type ScoredCandidate } from '../../resolution/policy';
import type { LabelledRecord, LabelledSet } from '../../resolution/record';
import { mulberry32 } from '../random';

interface Entry {
  record: LabelledRecord;
  prepared: PreparedRecord;
}

/** A labelled set prepared once: its records on file indexed, value frequencies counted. */
export interface PreparedSet {
  name: string;
  onFile: Map<string, Entry>;
  signUps: Entry[];
  index: BlockingIndex;
  frequencies: Frequencies;
  /** Verified holders on file of an email (`email:`) or phone (`phone:`): proof needs exactly one. */
  verifiedHolders: Map<string, number>;
  population: number;
}

/** The values a record holds for each frequency-adjusted comparison. */
function valuesOf(p: PreparedRecord): [Comparison, string][] {
  const out: [Comparison, string][] = [];
  if (p.given) out.push(['given_name', p.given]);
  if (p.family) out.push(['family_name', p.family]);
  for (const e of p.emails) out.push(['email', e.canonical]);
  for (const x of p.phones) out.push(['phone', x.e164]);
  for (const a of p.addresses) out.push(['address', a.key]);
  for (const d of p.devices) out.push(['device', d.fingerprint]);
  for (const c of p.cards) if (c.fingerprint) out.push(['card', c.fingerprint]);
  return out;
}

export function prepareSet(set: LabelledSet): PreparedSet {
  const onFile = new Map<string, Entry>();
  const index = new BlockingIndex();
  const counts = new Map<string, number>();
  const verifiedHolders = new Map<string, number>();
  for (const record of set.onFile) {
    const prepared = prepare(record, record.region);
    onFile.set(record.id, { record, prepared });
    index.add(prepared);
    for (const key of new Set(valuesOf(prepared).map(([c, v]) => `${c}:${v}`))) bump(counts, key);
    for (const e of prepared.emails) if (e.verified) bump(verifiedHolders, `email:${e.canonical}`);
    for (const x of prepared.phones) if (x.verified) bump(verifiedHolders, `phone:${x.e164}`);
  }
  const population = onFile.size;
  const frequencies: Frequencies = (c, v) => {
    const n = counts.get(`${c}:${v}`);
    return n === undefined ? null : n / population;
  };
  const signUps = set.signUps.map((record) => ({ record, prepared: prepare(record, record.region) }));
  return { name: set.name, onFile, signUps, index, frequencies, verifiedHolders, population };
}

function bump(m: Map<string, number>, key: string): void {
  m.set(key, (m.get(key) ?? 0) + 1);
}

/** The proof a candidate holds: an identifier verified on both, held verified by it alone. */
function proofOf(agreements: Agreement[], ps: PreparedSet): 'email' | 'phone' | null {
  for (const a of agreements) {
    if ((a.comparison === 'email' || a.comparison === 'phone') && a.level === 'exact_verified' && a.value) {
      if (ps.verifiedHolders.get(`${a.comparison}:${a.value}`) === 1) return a.comparison;
    }
  }
  return null;
}

export interface Resolved {
  signUp: Entry;
  decision: Decision;
  scored: ScoredCandidate[];
  agreements: Map<string, Agreement[]>;
  ms: number;
}

/** One sign-up resolved against the set's records on file. */
export function resolveOne(ps: PreparedSet, signUp: Entry, table: ModelTable, links: Map<string, number>): Resolved {
  const started = performance.now();
  const agreements = new Map<string, Agreement[]>();
  const scored: ScoredCandidate[] = ps.index.candidates(signUp.prepared).map((id) => {
    const other = (ps.onFile.get(id) as Entry).prepared;
    const a = compareRecords(signUp.prepared, other);
    agreements.set(id, a);
    return {
      customerId: id,
      score: scoreAgreements(a, table, ps.frequencies, ps.population),
      proof: proofOf(a, ps),
      recentAutoLinks: links.get(id) ?? 0,
    };
  });
  const decision = decide(scored);
  if (decision.outcome === 'linked') bump(links, decision.customerId);
  return { signUp, decision, scored, agreements, ms: performance.now() - started };
}

/** A table estimated from labelled sets: m from one person's pairs, u from random pairs, then calibrated. */
export function estimateTable(sets: PreparedSet[], version: string, seed: number): ModelTable {
  const rand = mulberry32(seed);
  const matches: Agreement[][] = [];
  const random: Agreement[][] = [];
  const exact: Agreement[][] = [];
  let returning = 0;
  let signUps = 0;
  for (const ps of sets) {
    const files = [...ps.onFile.values()];
    const byPerson = new Map<string, Entry[]>();
    for (const e of files) byPerson.set(e.record.person, [...(byPerson.get(e.record.person) ?? []), e]);
    for (const s of ps.signUps) {
      signUps++;
      const own = byPerson.get(s.record.person) ?? [];
      if (own.length > 0) returning++;
      for (const o of own) matches.push(compareRecords(s.prepared, o.prepared));
      for (let i = 0; i < 40; i++) {
        const o = files[Math.floor(rand() * files.length)] as Entry;
        if (o.record.person !== s.record.person) random.push(compareRecords(s.prepared, o.prepared));
      }
      for (const id of ps.index.candidates(s.prepared)) {
        const o = ps.onFile.get(id) as Entry;
        if (o.record.person === s.record.person) continue;
        const a = compareRecords(s.prepared, o.prepared).filter((x) =>
          (FREQUENCY_LEVELS[x.comparison] as readonly string[]).includes(x.level),
        );
        if (a.length > 0) exact.push(a);
      }
    }
  }
  const uncalibrated: ModelTable = {
    version,
    trainedOn: sets.map((s) => s.name),
    levels: estimateLevels(matches, random, exact),
    returningRate: returning / Math.max(signUps, 1),
    calibration: UNCALIBRATED,
  };
  const samples: CalibrationSample[] = [];
  for (const ps of sets) {
    for (const s of ps.signUps) {
      for (const id of ps.index.candidates(s.prepared)) {
        const o = ps.onFile.get(id) as Entry;
        const score = scoreAgreements(
          compareRecords(s.prepared, o.prepared),
          uncalibrated,
          ps.frequencies,
          ps.population,
        );
        samples.push({
          features: calibrationFeatures(score.parts),
          prior: offsetLogOdds(score.parts, uncalibrated, ps.population),
          y: o.record.person === s.record.person ? 1 : 0,
        });
      }
    }
  }
  return { ...uncalibrated, calibration: fitCalibration(samples) };
}

export interface Figures {
  set: string;
  signUps: number;
  returning: number;
  autoLinks: number;
  autoLinkPrecision: number;
  autoLinkRecall: number;
  recallAt: { 1: number; 3: number; 5: number };
  reviewsPer1000: number;
  householdWrongLinks: number;
  householdSignUps: number;
  adversarialAutoLinks: number;
  adversarialSignUps: number;
  calibrationError: number;
  calibrationBins: { predicted: number; observed: number; pairs: number }[];
  /** The same at the policy's thresholds: suggestion to review, review to auto-link, auto-link and up. */
  policyBands: { from: number; to: number; predicted: number; observed: number; pairs: number }[];
  candidatesP50: number;
  candidatesP99: number;
  scoringMsP95: number;
}

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.min(s.length - 1, Math.floor(q * s.length))] as number) : 0;
};

/** Every sign-up of a prepared set resolved in order, and the figures. */
export function evaluate(ps: PreparedSet, table: ModelTable): Figures {
  const links = new Map<string, number>();
  const personOf = (id: string): LabelledRecord => (ps.onFile.get(id) as Entry).record;
  const onFilePersons = new Set([...ps.onFile.values()].map((e) => e.record.person));
  // Per household, the people of it on file: a sign-up's household counts when another member is.
  const householdPeople = new Map<string, Set<string>>();
  for (const { record } of ps.onFile.values()) {
    if (!record.household) continue;
    householdPeople.set(record.household, (householdPeople.get(record.household) ?? new Set()).add(record.person));
  }
  let returning = 0;
  let autoLinks = 0;
  let correctLinks = 0;
  const hits = { 1: 0, 3: 0, 5: 0 };
  let reviews = 0;
  let householdWrong = 0;
  let householdSignUps = 0;
  let adversarialAuto = 0;
  let adversarial = 0;
  const bins = Array.from({ length: 10 }, () => ({ p: 0, y: 0, n: 0 }));
  const edges = [POLICY.suggestProbability, POLICY.reviewProbability, POLICY.autoLinkProbability, 1];
  const bands = edges.slice(0, -1).map((from, i) => ({ from, to: edges[i + 1] as number, p: 0, y: 0, n: 0 }));
  const candidates: number[] = [];
  const ms: number[] = [];
  for (const s of ps.signUps) {
    const r = resolveOne(ps, s, table, links);
    const person = s.record.person;
    const isReturning = onFilePersons.has(person);
    if (isReturning) returning++;
    candidates.push(r.scored.length);
    ms.push(r.ms);
    for (const c of r.scored) {
      const bin = bins[Math.min(9, Math.floor(c.score.probability * 10))] as (typeof bins)[number];
      const same = personOf(c.customerId).person === person ? 1 : 0;
      bin.p += c.score.probability;
      bin.y += same;
      bin.n++;
      const band = bands.find((b) => c.score.probability >= b.from && c.score.probability < b.to) ?? bands.at(-1);
      if (band && c.score.probability >= band.from)
        Object.assign(band, { p: band.p + c.score.probability, y: band.y + same, n: band.n + 1 });
    }
    const d = r.decision;
    const linked = d.outcome === 'linked' ? d.customerId : null;
    if (linked) {
      autoLinks++;
      if (personOf(linked).person === person) correctLinks++;
    }
    if (d.outcome === 'created' && d.review) reviews++;
    if (isReturning) {
      const ranked = d.possibleMatches.map((c) => personOf(c.customerId).person);
      for (const k of [1, 3, 5] as const)
        if (linked ? personOf(linked).person === person : ranked.slice(0, k).includes(person)) hits[k]++;
    }
    const household = s.record.household;
    const members = household ? householdPeople.get(household) : undefined;
    if (members && [...members].some((p) => p !== person)) {
      householdSignUps++;
      const top = linked ?? d.possibleMatches[0]?.customerId ?? null;
      if (top) {
        const o = personOf(top);
        if (o.person !== person && o.household === household) householdWrong++;
      }
    }
    if (s.record.slice === 'adversarial') {
      adversarial++;
      if (linked && personOf(linked).person !== person) adversarialAuto++;
    }
  }
  const pairs = bins.reduce((n, b) => n + b.n, 0);
  return {
    set: ps.name,
    signUps: ps.signUps.length,
    returning,
    autoLinks,
    autoLinkPrecision: autoLinks ? correctLinks / autoLinks : 1,
    autoLinkRecall: returning ? correctLinks / returning : 0,
    recallAt: { 1: hits[1] / returning, 3: hits[3] / returning, 5: hits[5] / returning },
    reviewsPer1000: (1000 * reviews) / ps.signUps.length,
    householdWrongLinks: householdWrong,
    householdSignUps,
    adversarialAutoLinks: adversarialAuto,
    adversarialSignUps: adversarial,
    calibrationError: bins.reduce((e, b) => e + (b.n ? Math.abs(b.p - b.y) / pairs : 0), 0),
    calibrationBins: bins.map((b) => ({ predicted: b.n ? b.p / b.n : 0, observed: b.n ? b.y / b.n : 0, pairs: b.n })),
    policyBands: bands.map((b) => ({
      from: b.from,
      to: b.to,
      predicted: b.n ? b.p / b.n : 0,
      observed: b.n ? b.y / b.n : 0,
      pairs: b.n,
    })),
    candidatesP50: quantile(candidates, 0.5),
    candidatesP99: quantile(candidates, 0.99),
    scoringMsP95: quantile(ms, 0.95),
  };
}

/** Expected calibration error of (probability, one person) pairs over ten bins, as `evaluate` bins them. */
function calibrationError(pairs: { p: number; y: number }[]): number {
  const bins = Array.from({ length: 10 }, () => ({ p: 0, y: 0, n: 0 }));
  for (const { p, y } of pairs) {
    const bin = bins[Math.min(9, Math.floor(p * 10))] as (typeof bins)[number];
    Object.assign(bin, { p: bin.p + p, y: bin.y + y, n: bin.n + 1 });
  }
  return bins.reduce((e, b) => e + Math.abs(b.p - b.y) / Math.max(pairs.length, 1), 0);
}

/**
 * The pairs the api meets and `evaluate` does not: through the api a sign-up that is not linked is
 * a customer, and later sign-ups are scored against it as well (a person twice on file, both copies
 * differing from the first). The sign-ups are resolved in order against the file, as `evaluate`
 * does; those created join an index of their own, and each later sign-up's candidates in it are
 * scored with the file's frequencies and population. Their calibration error, ten bins.
 */
export function joinedCalibration(
  ps: PreparedSet,
  table: ModelTable,
): { pairs: number; onePerson: number; error: number } {
  const links = new Map<string, number>();
  const joined = new BlockingIndex();
  const made = new Map<string, Entry>();
  const pairs: { p: number; y: number }[] = [];
  for (const s of ps.signUps) {
    for (const id of joined.candidates(s.prepared)) {
      const o = made.get(id) as Entry;
      const score = scoreAgreements(compareRecords(s.prepared, o.prepared), table, ps.frequencies, ps.population);
      pairs.push({ p: score.probability, y: o.record.person === s.record.person ? 1 : 0 });
    }
    if (resolveOne(ps, s, table, links).decision.outcome === 'created') {
      joined.add(s.prepared);
      made.set(s.record.id, s);
    }
  }
  return { pairs: pairs.length, onePerson: pairs.filter((x) => x.y === 1).length, error: calibrationError(pairs) };
}

/** Why a returning person's customer was neither auto-linked nor among the top 3 possible matches. */
export type MissKind = 'not_a_candidate' | 'below_suggestion' | 'outranked';

export interface Miss {
  signUp: string;
  kind: MissKind;
  /** The right customer's probability, scored whether blocking found it or not. */
  probability: number;
  /** Its parts, `comparison:level`, strongest first (no values). */
  parts: string[];
}

/**
 * The returning people `evaluate` counts as missed at 3, resolved in the same order, each with why:
 * blocking never read the right customer, it scored below the policy's suggestion threshold, or
 * others ranked above it (or the sign-up linked elsewhere).
 */
export function misses(ps: PreparedSet, table: ModelTable): Miss[] {
  const links = new Map<string, number>();
  const ownOf = new Map<string, string[]>();
  for (const [id, e] of ps.onFile) ownOf.set(e.record.person, [...(ownOf.get(e.record.person) ?? []), id]);
  const out: Miss[] = [];
  for (const s of ps.signUps) {
    const r = resolveOne(ps, s, table, links);
    const own = ownOf.get(s.record.person);
    if (!own) continue;
    const d = r.decision;
    if (d.outcome === 'linked' ? own.includes(d.customerId) : false) continue;
    if (d.possibleMatches.slice(0, 3).some((c) => own.includes(c.customerId))) continue;
    const best = own
      .map((id) => ({
        id,
        score: scoreAgreements(
          compareRecords(s.prepared, (ps.onFile.get(id) as Entry).prepared),
          table,
          ps.frequencies,
          ps.population,
        ),
      }))
      .sort((a, b) => b.score.logOdds - a.score.logOdds)[0] as { id: string; score: MatchScore };
    const found = r.scored.some((c) => c.customerId === best.id);
    const probability = best.score.probability;
    out.push({
      signUp: s.record.id,
      kind: !found ? 'not_a_candidate' : probability < POLICY.suggestProbability ? 'below_suggestion' : 'outranked',
      probability,
      parts: best.score.parts.map((p) => `${p.comparison}:${p.level}`),
    });
  }
  return out;
}

/**
 * The sets on which a table auto-links a sign-up to another person's customer, in words: a fitted
 * table that joins two people on any labelled set, training or held out, is not written.
 */
export function wrongAutoLinks(figures: Figures[]): string[] {
  return figures.flatMap((f) => {
    const wrong = Math.round(f.autoLinks * (1 - f.autoLinkPrecision));
    if (wrong === 0) return [];
    return [
      `${f.set}: ${wrong} wrong auto-link${wrong === 1 ? '' : 's'}, ${f.adversarialAutoLinks} on the adversarial slice`,
    ];
  });
}

const pct = (x: number): string => `${(100 * x).toFixed(2)} %`;

/** Wilson's 95 % interval of a proportion of `n`. */
export function wilson(observed: number, n: number): [number, number] {
  if (n === 0) return [0, 1];
  const z = 1.96;
  const centre = (observed + (z * z) / (2 * n)) / (1 + (z * z) / n);
  const half = (z * Math.sqrt((observed * (1 - observed)) / n + (z * z) / (4 * n * n))) / (1 + (z * z) / n);
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

const band = (b: Figures['policyBands'][number]): string => {
  const [lo, hi] = wilson(b.observed, b.pairs);
  return (
    `${b.from}–${b.to}: predicted ${b.predicted.toFixed(3)}, one person ${b.observed.toFixed(3)} ` +
    `(${lo.toFixed(3)}–${hi.toFixed(3)}, ${b.pairs} pairs)`
  );
};

/** The figures as lines a person reads. */
export function describeFigures(f: Figures): string[] {
  return [
    `${f.set}: ${f.signUps} sign-ups, ${f.returning} of people on file`,
    `  auto-links ${f.autoLinks}: precision ${f.autoLinkPrecision.toFixed(4)}, recall ${f.autoLinkRecall.toFixed(4)}`,
    `  right customer linked or in top 1/3/5: ${pct(f.recallAt[1])} / ${pct(f.recallAt[3])} / ${pct(f.recallAt[5])}`,
    `  reviews per 1,000 sign-ups: ${f.reviewsPer1000.toFixed(1)}`,
    `  wrong links within a household: ${f.householdWrongLinks} of ${f.householdSignUps} sign-ups with another ` +
      `member on file (${pct(f.householdSignUps ? f.householdWrongLinks / f.householdSignUps : 0)})`,
    `  adversarial: ${f.adversarialAutoLinks} wrong auto-links of ${f.adversarialSignUps} sign-ups`,
    `  calibration error ${f.calibrationError.toFixed(4)} over ${f.calibrationBins.reduce((n, b) => n + b.pairs, 0)} ` +
      `candidate pairs`,
    `  at the policy's thresholds: ${f.policyBands.map(band).join('; ')}`,
    `  candidates per sign-up p50 ${f.candidatesP50}, p99 ${f.candidatesP99}; ` +
      `scoring p95 ${f.scoringMsP95.toFixed(2)} ms`,
  ];
}

/** The misses as lines a person reads: one per miss, then the count of each kind. */
export function describeMisses(list: Miss[]): string[] {
  const kinds = new Map<MissKind, number>();
  for (const m of list) kinds.set(m.kind, (kinds.get(m.kind) ?? 0) + 1);
  return [
    ...list.map((m) => `miss ${m.signUp}: ${m.kind}, p ${m.probability.toFixed(3)}; ${m.parts.join(' ')}`),
    `missed at 3: ${list.length} (${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ') || 'none'})`,
  ];
}

export { POLICY };
