/**
 * What links two customers, part by part, in words: a pure function of the evidence the graph
 * holds for them (graph/matchEvidence.ts reads it). How likely the two are one person is the match
 * model's (resolution/model.ts); these parts say why the two were put side by side.
 *
 * Each part is one piece of evidence with the reason in words; a reason never holds an email, a
 * phone number, a street or a whole fingerprint (a device or card is named by the last four
 * characters of its fingerprint). Evidence too common to tell two people apart names no candidate
 * and says so: a device more customers use than the shared-device limit, a card or address on more
 * than SHARED_FACT_LIMIT customers' records.
 */
import type { IdentifierType } from './model';

/**
 * More customers than this holding one card (a company card) or one address (a parcel
 * forwarder, an office) make it no signal: the read stops counting there, as it does for devices
 * at the shared-device limit.
 */
export const SHARED_FACT_LIMIT = 50;

/** On which records an identifier both hold is verified. `unknown`: not on both, which one unknown. */
export const VERIFICATIONS = ['both', 'one_side', 'neither', 'unknown'] as const;
export type Verification = (typeof VERIFICATIONS)[number];

export interface IdentifierEvidence {
  type: IdentifierType;
  verified: Verification;
}

export interface DeviceEvidence {
  device_id: string;
  fingerprint: string;
  /** Customers on the device, these two included, counted up to the shared-device limit + 1. */
  shared_by: number;
}

export interface CardSide {
  payment_method_id: string;
  brand: string | null;
  last_four: string | null;
  expiry_month: number | null;
  expiry_year: number | null;
}

export interface CardEvidence {
  /** The processor's card fingerprint both methods have. */
  fingerprint: string;
  network: string | null;
  this: CardSide;
  other: CardSide;
  /** Customers holding the card, these two included, counted up to SHARED_FACT_LIMIT + 1. */
  shared_by: number;
}

export interface AddressSide {
  address_id: string;
  type: string;
  city: string | null;
  country: string;
}

export interface AddressEvidence {
  this: AddressSide;
  other: AddressSide;
  /** Customers at the address, these two included, counted up to SHARED_FACT_LIMIT + 1. */
  shared_by: number;
}

/** What the graph holds that links this customer ("this record") with another ("the other"). */
export interface MatchEvidence {
  /** Identifiers both gave (recorded at an onboarding), at most one per type: the best verified. */
  identifiers: IdentifierEvidence[];
  /** An onboarding's verified identifiers pointed at both customers and at another one. */
  conflicting_verified_identifiers: boolean;
  /** An onboarding's proof pointed at this customer and the policy refused the link (graph/proofCheck.ts). */
  link_refused: LinkRefusal | null;
  /**
   * An onboarding found this customer by the person's keys (name, birth date, an email's local
   * part: graph/matchKeys.ts) and the match model found the two likely: its probability then.
   */
  similar_person: { probability: number } | null;
  devices: DeviceEvidence[];
  cards: CardEvidence[];
  addresses: AddressEvidence[];
}

/** Why the policy refused a link: its reason and the conflicts in words (never a value). */
export interface LinkRefusal {
  reason: 'proof_conflicts' | 'probability_below_threshold' | 'too_many_recent_links';
  conflicts: string[];
}

const REFUSED_WORDS: Record<LinkRefusal['reason'], string> = {
  proof_conflicts: 'what both records say of the person conflicts',
  probability_below_threshold: 'the match model found the link too unlikely',
  too_many_recent_links: 'this customer had too many automatic links in 30 days',
};

/** What a part is about, in the order parts are listed. */
export const PART_SIGNALS = [
  'verified_email',
  'verified_phone_number',
  'card_fingerprint',
  'unverified_email',
  'unverified_phone_number',
  'device',
  'address',
  'conflicting_verified_identifiers',
  'link_refused',
  'similar_person',
] as const;
export type PartSignal = (typeof PART_SIGNALS)[number];

export type PartDetails =
  | { type: IdentifierType; verified: Verification }
  | { device_id: string; fingerprint_suffix: string; shared_by: number; shared_beyond_limit: boolean; limit: number }
  | {
      fingerprint_suffix: string;
      network: string | null;
      this: CardSide;
      other: CardSide;
      shared_by: number;
      shared_beyond_limit: boolean;
      limit: number;
    }
  | {
      compared: string[];
      this: AddressSide;
      other: AddressSide;
      shared_by: number;
      shared_beyond_limit: boolean;
      limit: number;
    }
  | Record<string, never>;

export interface EvidencePart {
  signal: PartSignal;
  reason: string;
  details: PartDetails;
}

/** The fields the address key compares (graph/addresses.ts `addressMatchKey`). */
export const ADDRESS_FIELDS_COMPARED: readonly string[] = ['street1', 'street2', 'zip_code', 'country'];

const NOUN: Record<IdentifierType, string> = { email: 'email address', phone_number: 'phone number' };
const VERIFIED_WORDS: Record<Verification, string> = {
  both: 'verified on both records',
  one_side: 'verified on one record only',
  neither: 'verified on neither record',
  unknown: 'unverified on at least one record',
};
const BRANDS: Record<string, string> = {
  visa: 'Visa',
  mastercard: 'Mastercard',
  amex: 'American Express',
  american_express: 'American Express',
  discover: 'Discover',
  jcb: 'JCB',
  diners: 'Diners Club',
  unionpay: 'UnionPay',
};

/** The last four characters of a fingerprint, as `…3f2a` (none of a fingerprint shorter than eight). */
export function fingerprintSuffix(fingerprint: string): string {
  return fingerprint.length >= 8 ? fingerprint.slice(-4) : '';
}

const named = (fingerprint: string): string => {
  const suffix = fingerprintSuffix(fingerprint);
  return suffix ? ` …${suffix}` : '';
};

/** A card in words: `Visa •••• 4242 exp 12/2028`, whatever of it is known. */
export function cardInWords(c: Omit<CardSide, 'payment_method_id'>): string {
  const brand = c.brand
    ? (BRANDS[c.brand.toLowerCase()] ?? c.brand.charAt(0).toUpperCase() + c.brand.slice(1))
    : 'card';
  const four = c.last_four ? ` •••• ${c.last_four}` : '';
  const exp =
    c.expiry_month !== null && c.expiry_year !== null
      ? ` exp ${String(c.expiry_month).padStart(2, '0')}/${c.expiry_year}`
      : '';
  return `${brand}${four}${exp}`;
}

function identifierPart(i: IdentifierEvidence): EvidencePart {
  return {
    signal: `${i.verified === 'both' ? 'verified' : 'unverified'}_${i.type}`,
    reason: `the same ${NOUN[i.type]}, ${VERIFIED_WORDS[i.verified]}`,
    details: { type: i.type, verified: i.verified },
  };
}

function devicePart(d: DeviceEvidence, limit: number): EvidencePart {
  const beyond = d.shared_by > limit;
  const details = {
    device_id: d.device_id,
    fingerprint_suffix: fingerprintSuffix(d.fingerprint),
    shared_by: d.shared_by,
    shared_beyond_limit: beyond,
    limit,
  };
  const device = `both log in from device${named(d.fingerprint)}`;
  if (beyond)
    return {
      signal: 'device',
      reason: `${device}, which more than ${limit} customers use: too widely shared to name candidates`,
      details,
    };
  const who = d.shared_by <= 2 ? 'which only these 2 customers use' : `which ${d.shared_by} customers use`;
  return { signal: 'device', reason: `${device}, ${who}`, details };
}

const tooCommon = (n: number): string => `: on more than ${n} customers' records, too widely shared to name candidates`;

function cardPart(c: CardEvidence): EvidencePart {
  const beyond = c.shared_by > SHARED_FACT_LIMIT;
  const mine = cardInWords(c.this);
  const theirs = cardInWords(c.other);
  const said =
    mine === theirs
      ? `card ${mine} on both records (same card fingerprint)`
      : `the same card (same card fingerprint): ${mine} on this record, ${theirs} on the other`;
  return {
    signal: 'card_fingerprint',
    reason: beyond ? `${said}${tooCommon(SHARED_FACT_LIMIT)}` : said,
    details: {
      fingerprint_suffix: fingerprintSuffix(c.fingerprint),
      network: c.network,
      this: c.this,
      other: c.other,
      shared_by: c.shared_by,
      shared_beyond_limit: beyond,
      limit: SHARED_FACT_LIMIT,
    },
  };
}

function addressPart(a: AddressEvidence): EvidencePart {
  const beyond = a.shared_by > SHARED_FACT_LIMIT;
  const said =
    a.this.type === a.other.type
      ? `the same ${a.this.type} address after normalisation`
      : `the same address after normalisation: ${a.this.type} on this record, ${a.other.type} on the other`;
  return {
    signal: 'address',
    reason: beyond ? `${said}${tooCommon(SHARED_FACT_LIMIT)}` : said,
    details: {
      compared: [...ADDRESS_FIELDS_COMPARED],
      this: a.this,
      other: a.other,
      shared_by: a.shared_by,
      shared_beyond_limit: beyond,
      limit: SHARED_FACT_LIMIT,
    },
  };
}

/**
 * The evidence of one possible match in words, in PART_SIGNALS's order. A device shared by more
 * customers than `sharedDeviceLimit` is a part that says it names no candidates.
 */
export function evidenceParts(evidence: MatchEvidence, sharedDeviceLimit: number): EvidencePart[] {
  const parts: EvidencePart[] = [
    ...evidence.identifiers.map(identifierPart),
    ...evidence.cards.map(cardPart),
    ...evidence.devices.map((d) => devicePart(d, sharedDeviceLimit)),
    ...evidence.addresses.map(addressPart),
  ];
  if (evidence.conflicting_verified_identifiers)
    parts.push({
      signal: 'conflicting_verified_identifiers',
      reason:
        'one onboarding gave verified identifiers of this customer and of another one: ' +
        'noted for review, never merged automatically',
      details: {},
    });
  if (evidence.link_refused)
    parts.push({
      signal: 'link_refused',
      reason:
        `an onboarding's verified identifier pointed at this customer and the link was refused: ` +
        [REFUSED_WORDS[evidence.link_refused.reason], ...evidence.link_refused.conflicts].join('; '),
      details: {},
    });
  if (evidence.similar_person)
    parts.push({
      signal: 'similar_person',
      reason:
        'an onboarding found the two alike by name, date of birth or an email’s local part: the match model ' +
        `gave ${evidence.similar_person.probability.toFixed(2)}`,
      details: {},
    });
  // Stable: parts of one signal keep their order (the strongest verification, the cards, ...).
  return parts.sort((a, b) => PART_SIGNALS.indexOf(a.signal) - PART_SIGNALS.indexOf(b.signal));
}

/**
 * Matches in review order: the most likely first by `likelihood` (the model's log-odds: two strong
 * matches both round to a probability of 1), ties by customer id.
 */
export function rankMatches<T extends { customer_id: string }>(matches: T[], likelihood: (m: T) => number): T[] {
  return [...matches].sort(
    (a, b) =>
      likelihood(b) - likelihood(a) || (a.customer_id < b.customer_id ? -1 : a.customer_id > b.customer_id ? 1 : 0),
  );
}

/** Which of two verifications says more (the one kept when several onboardings named one type). */
export function strongerVerification(a: Verification, b: Verification): Verification {
  return VERIFICATIONS.indexOf(a) <= VERIFICATIONS.indexOf(b) ? a : b;
}
