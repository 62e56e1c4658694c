/**
 * The identity graph's vocabulary: node and edge shapes as the graph returns them (plain,
 * snake_case, JSON-ready, never a token) and zod schemas for what writers may send in. The api
 * reuses these schemas, so a field is named the same in a 400 and in the graph.
 */
import { z } from 'zod';
import { InvalidInputError } from './errors';
import { containsCardNumber } from './tokens';

/**
 * Why a device's trust moved, as its DeviceTrustScoreUpdated event says it (every customer of the
 * device reads it; it is published in clear): a fraud outcome, ops, or an agent — never words.
 */
export const DEVICE_TRUST_REASONS = ['fraud signal', 'set by ops', 'set by an agent'] as const;
export type DeviceTrustReason = (typeof DEVICE_TRUST_REASONS)[number];

/**
 * What a CustomerErased event records of why: a code, never ops' words — the event outlives the
 * customer (it is the erasure's record, published in clear for consumers to purge by).
 */
export const ERASURE_REASON_CODES = ['ops_request', 'restore_reapplied'] as const;
export type ErasureReasonCode = (typeof ERASURE_REASON_CODES)[number];

export const CUSTOMER_STATUSES = ['active', 'suspended', 'erased'] as const;
/** What a writer may set: `erased` only the erasure sets (graph/erasure.ts), with all that goes with it. */
export const SETTABLE_CUSTOMER_STATUSES = ['active', 'suspended'] as const;
export const PAYMENT_METHOD_TYPES = ['card', 'digital_wallet', 'bank_account'] as const;
export const PAYMENT_METHOD_STATUSES = [
  'active',
  'expired',
  'failed',
  'inactive',
  'compromised',
  'unverified',
] as const;
export const IDENTIFIER_TYPES = ['email', 'phone_number'] as const;
export const ADDRESS_TYPES = ['shipping', 'billing'] as const;

/**
 * A status writers may set. The graph also holds `merged` on the tombstone of a merge
 * (graph/identityMerge.ts); reads follow a tombstone to its survivor, so no reader answers with it.
 */
export type CustomerStatus = (typeof CUSTOMER_STATUSES)[number];
export type PaymentMethodType = (typeof PAYMENT_METHOD_TYPES)[number];
export type PaymentMethodStatus = (typeof PAYMENT_METHOD_STATUSES)[number];
export type IdentifierType = (typeof IDENTIFIER_TYPES)[number];

// ---- what the graph returns -------------------------------------------------------------

export interface Customer {
  id: string;
  status: CustomerStatus;
  segment: string;
  /** Lifetime value in minor units of the reporting currency (the graph's `ltv` property). */
  ltv_minor: number;
  /** The Oracle's predicted lifetime value (`predicted_ltv`), or null; never mixed with `ltv_minor`. */
  predicted_ltv_minor: number | null;
  acquisition_date: string;
  created_at: string;
  updated_at: string;
}

/** A payment method as any reader sees it. The token is never part of it. */
export interface PaymentMethod {
  id: string;
  type: PaymentMethodType;
  status: PaymentMethodStatus;
  brand: string | null;
  last_four: string | null;
  expiry_month: number | null;
  expiry_year: number | null;
  created_at: string;
  updated_at: string;
}

/** A payment method with its HAS_PAYMENT_METHOD edge: the wallet item. */
export interface WalletEntry extends PaymentMethod {
  is_default: boolean;
  first_used: string | null;
  last_used: string | null;
}

export interface Device {
  id: string;
  fingerprint: string;
  trust_score: number;
  created_at: string;
  updated_at: string;
}

/** A device with the customer's LOGGED_IN_FROM edge: the last IP and user agent are this customer's own. */
export interface CustomerDevice extends Device {
  login_count: number;
  first_login: string;
  last_login: string;
  last_seen_ip: string | null;
  last_seen_user_agent: string | null;
  /**
   * When the customer said the device is not theirs (graph/devices.ts removeDeviceFromCustomer):
   * the edge stays, marked; null while it is theirs (a later login clears it).
   */
  disowned_at: string | null;
}

export interface Address {
  id: string;
  street1: string;
  street2: string | null;
  city: string;
  state: string | null;
  zip_code: string;
  country: string;
  type: (typeof ADDRESS_TYPES)[number];
  is_default: boolean;
  created_at: string;
  updated_at: string;
}

/** An address with the customer's SHIPPED_TO edge's mark (graph/addresses.ts removeAddressFromCustomer). */
export interface CustomerAddress extends Address {
  /** When the customer said the address is not theirs: the edge stays, marked; null while it is theirs. */
  disowned_at: string | null;
}

export interface DigitalIdentifier {
  id: string;
  type: IdentifierType;
  value: string;
  is_verified: boolean;
  created_at: string;
  updated_at: string;
}

// ---- what writers send ----------------------------------------------------------------

/**
 * JavaScript's whitespace (what String.prototype.trim removes), spelled out so that a pattern
 * means the same here, in the OpenAPI document and in a client in another language (whose \\s
 * differs).
 */
export const JS_WHITESPACE = '\\t\\n\\v\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff';
const HAS_TEXT = new RegExp(`[^${JS_WHITESPACE}]`);

/**
 * Free text of at most `max` characters, trimmed after it is checked: what the document says
 * (a length and "not only whitespace") is what is checked, on the text as sent.
 */
export function text(max: number, options: { optional?: 'blank-allowed' } = {}) {
  const raw = freeText(max);
  const checked = options.optional === 'blank-allowed' ? raw : raw.regex(HAS_TEXT, 'must not be blank');
  return checked.transform((v) => v.trim());
}

/** Words from a person or a service (a reason, a note): never a full card number, in any spelling. */
export function freeText(max: number) {
  return z
    .string()
    .max(max)
    .refine((v) => !containsCardNumber(v), 'looks like it holds a full card number: never send one');
}

const id = z.uuid();
/**
 * A day: a plain date, or an RFC 3339 date-time whose calendar date (in its own offset) is the
 * day: `2026-11-22` and `2026-11-22T15:20:00Z` are both 22 November 2026.
 */
export const dayInput = z.union([z.iso.date(), z.iso.datetime({ offset: true, local: false })]);
/** Lifetime value in minor units of the reporting currency (the API speaks decimal strings). */
const minorUnits = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const digitalIdentifierInput = z.strictObject({
  id: id.optional(),
  type: z.enum(IDENTIFIER_TYPES),
  value: text(320),
  is_verified: z.boolean().default(false),
});
export type DigitalIdentifierInput = z.input<typeof digitalIdentifierInput>;

export const newCustomerInput = z.strictObject({
  id: id.optional(),
  segment: text(64).default('New'),
  ltv_minor: minorUnits.default(0),
  acquisition_date: dayInput.optional(),
  status: z.enum(SETTABLE_CUSTOMER_STATUSES).default('active'),
  digital_identifiers: z.array(digitalIdentifierInput).max(20).default([]),
});
export type NewCustomerInput = z.input<typeof newCustomerInput>;

export const customerPatch = z
  .object({
    segment: text(64),
    ltv_minor: minorUnits,
    status: z.enum(SETTABLE_CUSTOMER_STATUSES),
  })
  .partial()
  .strict()
  .refine((p) => Object.keys(p).length > 0, { message: 'nothing to update' });
export type CustomerPatch = z.input<typeof customerPatch>;

/** The fields of a new payment method, before the card-only rules are checked. */
export const paymentMethodFields = z.strictObject({
  id: id.optional(),
  type: z.enum(PAYMENT_METHOD_TYPES),
  token: z.string().min(1).max(512),
  brand: text(32).optional(),
  last_four: z
    .string()
    .regex(/^[0-9]{4}$/, 'must be exactly 4 digits')
    .optional(),
  expiry_month: z.number().int().min(1).max(12).optional(),
  expiry_year: z.number().int().min(2000).max(2100).optional(),
  status: z.enum(PAYMENT_METHOD_STATUSES).default('active'),
});

/** A card needs brand, last four digits and expiry; other types may omit them. */
export function requireCardDetails(
  pm: {
    type: string;
    brand?: string | undefined;
    last_four?: string | undefined;
    expiry_month?: number | undefined;
    expiry_year?: number | undefined;
  },
  ctx: z.RefinementCtx,
): void {
  if (pm.type !== 'card') return;
  for (const field of ['brand', 'last_four', 'expiry_month', 'expiry_year'] as const) {
    if (pm[field] === undefined) ctx.addIssue({ code: 'custom', path: [field], message: 'required for a card' });
  }
}

/**
 * The card rule above, as JSON Schema says it (for the OpenAPI document): when `type` is `card`,
 * brand, last four digits and expiry are required.
 */
export const CARD_DETAILS_SCHEMA = {
  if: { properties: { type: { const: 'card' } }, required: ['type'] },
  then: { required: ['brand', 'last_four', 'expiry_month', 'expiry_year'] },
};

/** A payment method's fields with the card rule, checked and documented. */
export function withCardDetails<S extends z.ZodType<{ type: string }>>(schema: S) {
  return schema.superRefine(requireCardDetails).meta(CARD_DETAILS_SCHEMA);
}

export const newPaymentMethodInput = withCardDetails(paymentMethodFields);
export type NewPaymentMethodInput = z.input<typeof newPaymentMethodInput>;

export const deviceInput = z.strictObject({
  fingerprint: text(256),
  ip: z.string().max(64).optional(),
  user_agent: z.string().max(512).optional(),
  trust_score: z.number().min(0).max(1).optional(),
});
export type DeviceInput = z.input<typeof deviceInput>;

/** Years a date of birth may be in (1800–2099), and those of them with a 29 February. */
const YEAR = String.raw`(?:1[89][0-9][0-9]|20[0-9][0-9])`;
const LEAP_YEAR = String.raw`(?:1[89](?:0[48]|[2468][048]|[13579][26])|20(?:0[48]|[2468][048]|[13579][26])|2000)`;
/** A month and a day it has, 29 February apart: months of 31 days, of 30, February to the 28th. */
const MONTH_DAY = [
  String.raw`(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])`,
  String.raw`(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)`,
  String.raw`02-(?:0[1-9]|1[0-9]|2[0-8])`,
].join('|');

/**
 * A date of birth as far as it is known, as given: `1980-04-02`, `1980-04` or `1980`; a whole date
 * is one the calendar has. A pattern (not a check after it), so that the OpenAPI document says
 * exactly what is accepted; digits as [0-9], which means the same in every regex dialect (\d
 * matches other scripts' digits in some).
 */
export const BIRTH_DATE_PATTERN = new RegExp(
  `^(?:${YEAR}(?:-(?:0[1-9]|1[0-2]))?|${YEAR}-(?:${MONTH_DAY})|${LEAP_YEAR}-02-29)$`,
);

/**
 * Who the customer is, as far as the caller knows: optional personal data, used to tell people
 * apart (docs/identity.md). Stored on the customer, shown in their profile and export, erased with
 * them; never in an event, a log or a context read.
 */
export const personInput = z
  .strictObject({
    given_name: text(100).optional(),
    family_name: text(100).optional(),
    birth_date: z
      .string()
      .regex(BIRTH_DATE_PATTERN, 'must be a date of birth as far as it is known: YYYY-MM-DD, YYYY-MM or YYYY')
      .optional(),
  })
  .meta({ description: 'Optional personal data that tells people apart; each part optional' });
export type PersonInput = z.output<typeof personInput>;

/** A customer's person attributes as stored: each null when not known. */
export interface Person {
  given_name: string | null;
  family_name: string | null;
  birth_date: string | null;
}

export const addressInput = z.strictObject({
  id: id.optional(),
  street1: text(200),
  street2: text(200, { optional: 'blank-allowed' }).optional(),
  city: text(100),
  state: text(100, { optional: 'blank-allowed' }).optional(),
  zip_code: text(20),
  country: z.string().regex(/^[A-Z]{2}$/, 'must be an ISO 3166-1 alpha-2 code'),
  type: z.enum(ADDRESS_TYPES).default('shipping'),
  is_default: z.boolean().default(false),
});
export type AddressInput = z.input<typeof addressInput>;

/**
 * Parses input with a schema; the first problem becomes an InvalidInputError naming the field
 * by its path under `prefix` (e.g. `payment_method.expiry_month`).
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, prefix: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = [prefix, ...(issue?.path ?? []).map(String)].filter(Boolean).join('.');
  throw new InvalidInputError(field || prefix, issue?.message ?? 'invalid');
}
