/**
 * The match model: how likely two records are one person, with its parts in words.
 *
 * Fellegi–Sunter. Each comparison's level (resolution/compare.ts) has an m (how often records of
 * one person agree at that level) and a u (how often records of two people do); the level adds
 * log2(m / u) bits of evidence for (positive) or against (negative). Agreeing on an exact value
 * is adjusted by how common that value is (term frequency): a surname one record in fifty holds,
 * an address eighty customers share, a device a kiosk's 200 customers log in from count for
 * less than a rare one; for those levels u is the value's own frequency times the share of the
 * level among exact agreements (`split`). Levels that disagree carry negative evidence: a
 * different date of birth, given name or verified phone lowers the score.
 *
 * The prior odds that a sign-up is a given one of the N records on file and the parts give
 * Fellegi–Sunter's posterior; it is calibrated (`calibration`: a weight per group of fields, per
 * interaction between groups and an intercept, fitted on labelled pairs, because fields are not
 * independent: a household shares a family name, an address and a device, and a relative shares
 * them while disagreeing on the given name) into the probability the model reports. The table
 * (resolution/weights.ts) is versioned data, estimated by resolution/estimate.ts from labelled
 * data; scoring is a pure function of it.
 */
import { COMPARISON_NAMES, COMPARISONS, type Agreement, type Comparison } from './compare';
import type { PhoneLine } from './normalise';

export interface LevelWeight {
  /** P(level | one person). */
  m: number;
  /** P(level | two people); for an exact level with a frequency, only used when the frequency is unknown. */
  u: number;
  /** For exact levels adjusted by frequency: P(this level | two people agree exactly on a value). */
  split?: number;
}

export interface ModelTable {
  /** The table's version: scores name it, decisions record it. */
  version: string;
  /** The data sets it was estimated from. */
  trainedOn: string[];
  levels: { [C in Comparison]: Partial<Record<(typeof COMPARISONS)[C][number], LevelWeight>> };
  /** P(a sign-up's person is already on file), for the prior odds against one record of N. */
  returningRate: number;
  /**
   * Fellegi–Sunter's log-odds, calibrated: the prior's log-odds, plus each group's bits (natural
   * log units) times the group's weight, plus each interaction's (`INTERACTIONS`) times its weight,
   * plus the intercept. A group's weight is below 1 where its fields are not independent of each
   * other (a household shares a family name, an address and a device: one cause, not three).
   */
  calibration: Calibration;
}

/**
 * Fields whose agreement shares a cause: living together (family name, address, device), being
 * one person (given name, date of birth), holding one account (email, phone, card).
 */
export const EVIDENCE_GROUPS = {
  household: ['family_name', 'address', 'device'],
  person: ['given_name', 'birth_date'],
  accounts: ['email', 'phone', 'card'],
} as const satisfies Record<string, readonly Comparison[]>;
export type EvidenceGroup = keyof typeof EVIDENCE_GROUPS;
export const GROUP_NAMES = Object.keys(EVIDENCE_GROUPS) as EvidenceGroup[];

/**
 * Interactions the calibration weighs besides the groups, in bits as the groups are: where one
 * group's evidence changes what another's means (a linear sum of the groups cannot say so).
 *   household_conflict: the household's evidence for (its positive parts) when the person's
 *     conflicts (a different given name or date of birth where both records know it). A relative,
 *     a twin above all, shares the home and disagrees on who they are; the home is then explained
 *     by living together, not by being one person.
 *   household_unattested: the household's evidence for when the two records say nothing about the
 *     person (no given name or date of birth known to both): the same home, nobody in it named.
 *   household_both_conflict: the household's evidence for when both the given name and the date
 *     of birth conflict. One person who types a different given name and a different birth date
 *     is rarer than the two conflicts apart suggest; a sibling does it every time.
 * Each interaction can only lower the score (its weight is fitted at most 0): a conflict never
 * makes two records more alike.
 */
export const INTERACTIONS = ['household_conflict', 'household_unattested', 'household_both_conflict'] as const;
export type Interaction = (typeof INTERACTIONS)[number];
export type Feature = EvidenceGroup | Interaction;
export const FEATURE_NAMES: readonly Feature[] = [...GROUP_NAMES, ...INTERACTIONS];

export interface Calibration {
  weights: Record<Feature, number>;
  intercept: number;
}

/** The uncalibrated model: every group at its full weight, no interaction. */
export const UNCALIBRATED: Calibration = Object.freeze({
  weights: Object.freeze({
    household: 1,
    person: 1,
    accounts: 1,
    household_conflict: 0,
    household_unattested: 0,
    household_both_conflict: 0,
  }),
  intercept: 0,
});

const groupOf = (c: Comparison): EvidenceGroup =>
  GROUP_NAMES.find((g) => (EVIDENCE_GROUPS[g] as readonly Comparison[]).includes(c)) as EvidenceGroup;

/** The parts' bits summed per group. */
export function bitsByGroup(parts: MatchPart[]): Record<EvidenceGroup, number> {
  const out = { household: 0, person: 0, accounts: 0 };
  for (const p of parts) out[groupOf(p.comparison)] += p.bits;
  return out;
}

/** Levels that, when both records know the field, say two different people: never auto-linked. */
export const CONFLICTS: readonly string[] = ['given_name.different', 'birth_date.different'];

const isConflict = (p: MatchPart): boolean => CONFLICTS.includes(`${p.comparison}.${p.level}`);

const positiveBits = (parts: MatchPart[], keep: (p: MatchPart) => boolean): number =>
  parts.reduce((s, p) => s + (p.bits > 0 && keep(p) ? p.bits : 0), 0);

/**
 * The anchor, in bits: of the account identifiers (email, phone, card) the two records share, the
 * rarest one's bits, up to what its rarity says (log2 of one over its frequency). It joins the
 * prior at full weight instead of being calibrated with its group: an identifier held by one
 * record in N says "this one of the N", which is exactly what the prior's one in N doubts, so the
 * two cancel whatever N is. Calibrated with the group's weight (below 1, because the group's
 * fields share a cause), the prior would outweigh it more the more records are on file, and a
 * sign-up's probability would fall as the population grows.
 */
export function anchorBits(parts: MatchPart[]): number {
  let rarest: MatchPart | null = null;
  for (const p of parts) {
    if (groupOf(p.comparison) !== 'accounts' || p.bits <= 0 || p.frequency === undefined) continue;
    if (!rarest || p.frequency < (rarest.frequency as number)) rarest = p;
  }
  return rarest ? Math.min(rarest.bits, Math.log2(1 / (rarest.frequency as number))) : 0;
}

/** The calibration's features, in bits: each group's (the accounts' without the anchor) and each interaction's. */
export function calibrationFeatures(parts: MatchPart[]): Record<Feature, number> {
  const household = positiveBits(parts, (p) => groupOf(p.comparison) === 'household');
  // A mobile number both hold is one person's: the home does not explain the conflict away.
  const conflicts = parts.some((p) => p.line === 'mobile') ? 0 : parts.filter(isConflict).length;
  const conflict = conflicts > 0;
  const attested = parts.some((p) => groupOf(p.comparison) === 'person');
  const groups = bitsByGroup(parts);
  return {
    ...groups,
    accounts: groups.accounts - anchorBits(parts),
    household_conflict: conflict ? household : 0,
    household_unattested: attested ? 0 : household,
    household_both_conflict: conflicts > 1 ? household : 0,
  };
}

/** How common a value is among the records on file: the fraction holding it, when known. */
export type Frequencies = (comparison: Comparison, value: string) => number | null;

export interface MatchPart {
  comparison: Comparison;
  level: string;
  /** Bits of evidence: positive for, negative against. */
  bits: number;
  /** The part in words; never a value (no name, email, number, street or fingerprint). */
  reason: string;
  /** The value's frequency when it adjusted the part (0–1). */
  frequency?: number;
  /** The line of the phone number both hold (or one digit off), when known: a mobile is one person's. */
  line?: PhoneLine;
}

export interface MatchScore {
  /** Calibrated P(one person), 0–1. */
  probability: number;
  /**
   * The calibrated log-odds (natural log) the probability is the sigmoid of: what ranks candidates,
   * since two strong ones both round to a probability of 1.
   */
  logOdds: number;
  /** Sum of the parts' bits. */
  bits: number;
  parts: MatchPart[];
  /** Parts that say the two are different people where both records know: they block an auto-link. */
  conflicts: MatchPart[];
  version: string;
}

/** No value is rarer than one record of the population. */
const frequencyFloor = (population: number): number => 1 / Math.max(population, 1);

const WORDS: { [C in Comparison]: Record<(typeof COMPARISONS)[C][number], string> } = {
  given_name: {
    exact: 'same given name',
    nickname: 'given names are forms of one name',
    close: 'given names differ by a typo',
    initial: 'given name matches an initial',
    different: 'different given names',
  },
  family_name: {
    exact: 'same family name',
    close: 'family names nearly the same or sharing a part',
    different: 'different family names',
  },
  birth_date: {
    exact: 'same date of birth',
    partial: 'date of birth agrees as far as both know it',
    swap: 'date of birth with day and month swapped',
    typo: 'date of birth one digit apart',
    near: 'date of birth with two of its three parts the same',
    different: 'different dates of birth',
  },
  email: {
    exact_verified: 'same email, verified on both',
    exact: 'same email, not verified on both',
    local_close: 'email names nearly the same',
    different: 'no email in common',
  },
  phone: {
    exact_verified: 'same phone number, verified on both',
    exact: 'same phone number, not verified on both',
    typo: 'phone numbers one digit apart',
    different_verified: 'different verified phone numbers',
    different: 'no phone number in common',
  },
  address: {
    exact: 'same address',
    close: 'same street number and street, written differently',
    street: 'same street and postcode, different number',
    postcode: 'same postcode',
    different: 'no address in common',
  },
  device: {
    exact: 'same device',
    network: 'devices on the same network',
    different: 'no device in common',
  },
  card: {
    fingerprint: 'same card (processor fingerprint)',
    details: 'cards with the same brand, last four and expiry',
    different: 'no card in common',
  },
};

const describeFrequency = (f: number): string =>
  f >= 0.001 ? ` (held by 1 in ${Math.max(1, Math.round(1 / f))} records)` : ' (rare)';

/** One agreement's part. */
function partOf(a: Agreement, table: ModelTable, frequencies: Frequencies, population: number): MatchPart | null {
  const levels = table.levels[a.comparison] as Partial<Record<string, LevelWeight>>;
  const w = levels[a.level];
  if (!w) return null;
  const words = (WORDS[a.comparison] as Record<string, string>)[a.level] ?? a.level;
  const reason = a.swapped ? `${words} (given and family names swapped)` : words;
  const line = a.line ? { line: a.line } : {};
  const f = a.value !== null && w.split !== undefined ? frequencies(a.comparison, a.value) : null;
  if (f !== null && w.split !== undefined) {
    const frequency = Math.max(f, frequencyFloor(population));
    const bits = Math.log2(w.m / (frequency * w.split));
    const part = { comparison: a.comparison, level: a.level, bits, reason: reason + describeFrequency(frequency) };
    return { ...part, frequency, ...line };
  }
  return { comparison: a.comparison, level: a.level, bits: Math.log2(w.m / w.u), reason, ...line };
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/** The prior log-odds (natural log) that a sign-up is one given record of `population`. */
export function priorLogOdds(table: ModelTable, population: number): number {
  const prior = table.returningRate / Math.max(population, 1);
  return Math.log(prior / (1 - prior));
}

/**
 * The offset the calibration is fitted around: the prior's log-odds plus the anchor's
 * (`anchorBits`), natural log units.
 */
export function offsetLogOdds(parts: MatchPart[], table: ModelTable, population: number): number {
  return priorLogOdds(table, population) + anchorBits(parts) * Math.LN2;
}

/** The calibrated log-odds of one person: the offset, the intercept and the weighted features. */
export function calibratedLogOdds(parts: MatchPart[], table: ModelTable, population: number): number {
  const { weights, intercept } = table.calibration;
  const features = calibrationFeatures(parts);
  const evidence = FEATURE_NAMES.reduce((x, f) => x + weights[f] * features[f] * Math.LN2, 0);
  return offsetLogOdds(parts, table, population) + intercept + evidence;
}

/**
 * Two records' match score: the calibrated probability, the parts (strongest evidence first) and
 * the conflicts. `population` is the number of records on file (the prior odds are one in it).
 */
export function scoreAgreements(
  agreements: Agreement[],
  table: ModelTable,
  frequencies: Frequencies,
  population: number,
): MatchScore {
  const parts = agreements
    .map((a) => partOf(a, table, frequencies, population))
    .filter((p): p is MatchPart => p !== null)
    .sort((x, y) => Math.abs(y.bits) - Math.abs(x.bits) || x.comparison.localeCompare(y.comparison));
  const bits = parts.reduce((s, p) => s + p.bits, 0);
  const logOdds = calibratedLogOdds(parts, table, population);
  return {
    probability: sigmoid(logOdds),
    logOdds,
    bits,
    parts,
    conflicts: parts.filter(isConflict),
    version: table.version,
  };
}

/** Every comparison and level the table must weigh: a table missing one is refused. */
export function checkTable(table: ModelTable): void {
  for (const c of COMPARISON_NAMES) {
    for (const level of COMPARISONS[c]) {
      const w = (table.levels[c] as Partial<Record<string, LevelWeight>>)[level];
      if (!w || !(w.m > 0 && w.m <= 1) || !(w.u > 0 && w.u <= 1))
        throw new Error(`match model ${table.version}: ${c}.${level} needs 0 < m, u ≤ 1`);
    }
  }
  for (const f of FEATURE_NAMES)
    if (!Number.isFinite(table.calibration.weights[f]))
      throw new Error(`match model ${table.version}: calibration weight ${f} missing`);
  if (!(table.returningRate > 0 && table.returningRate < 1))
    throw new Error(`match model ${table.version}: returningRate must be in (0, 1)`);
}
