/**
 * An onboarding's request, before its workflow starts (step 1 of graph/onboarding.ts): validated
 * as the api receives it, identifiers normalised, placeholders dropped, the payment token
 * encrypted under a new payment-method id: the plan the workflow carries, with nothing secret or
 * unnormalised in it.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { decimalPattern, decimalProblem, toMinorUnits } from '../payments/money';
import { UnrecognisableInputError } from './errors';
import type { Graph } from './graph';
import { EMAIL_PATTERN, isJunkFingerprint, isJunkIdentifier, normaliseIdentifier, PHONE_PATTERN } from './identity';
import {
  addressInput,
  deviceInput,
  newCustomerInput,
  parseInput,
  paymentMethodFields,
  personInput,
  withCardDetails,
  type IdentifierType,
  type Person,
} from './model';
import { preparePaymentMethod, type PaymentMethodRow } from './paymentMethods';

/** An exact decimal amount in `currency` (the API never takes money as a float). */
export function decimalAmount(currency: string) {
  return z
    .string()
    .regex(decimalPattern(currency), decimalProblem('x', currency) ?? undefined)
    .meta({ description: `An exact decimal in ${currency}, e.g. "1234.50"; never rounded` });
}

const verifiedFlag = z
  .boolean()
  .default(false)
  .meta({
    description:
      'Counts only from a caller whose token holds the scope identity:verify (the verification service); ' +
      'from anyone else it is treated as false',
  });

/**
 * An identifier as the api takes it: an email, or a phone number in international form, each
 * with the exact pattern the OpenAPI document shows (graph/identity.ts).
 */
const identifierRequest = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('email'),
    // The length is checked first and stops the check (a long value never reaches the pattern).
    value: z.string().max(320, { abort: true }).regex(EMAIL_PATTERN, 'not an email address'),
    is_verified: verifiedFlag,
  }),
  z.strictObject({
    type: z.literal('phone_number'),
    value: z.string().max(64).regex(PHONE_PATTERN, 'not a phone number in international form, e.g. +14155550123'),
    is_verified: verifiedFlag,
  }),
]);

const NO_IDENTITY =
  'an onboarding needs at least one identity fact the graph can recognise later: ' +
  'a digital identifier, a device or a payment method';

const requestSchemas = new Map<string, ReturnType<typeof buildRequestSchema>>();

function buildRequestSchema(currency: string) {
  return z
    .strictObject({
      customer: z
        .strictObject({
          segment: newCustomerInput.shape.segment,
          ltv: decimalAmount(currency).default('0'),
          acquisition_date: newCustomerInput.shape.acquisition_date,
        })
        .default({ segment: 'New', ltv: '0' }),
      payment_method: withCardDetails(paymentMethodFields.omit({ id: true, status: true }).strict()).optional(),
      device: deviceInput.omit({ trust_score: true }).strict().optional(),
      address: addressInput.omit({ id: true }).strict().optional(),
      digital_identifiers: z.array(identifierRequest).max(10).default([]),
      person: personInput.optional(),
    })
    .refine((r) => r.digital_identifiers.length > 0 || r.device !== undefined || r.payment_method !== undefined, {
      message: NO_IDENTITY,
    })
    .meta({
      description: `At least one of \`digital_identifiers\`, \`device\` and \`payment_method\`: ${NO_IDENTITY}.`,
      anyOf: [
        { required: ['digital_identifiers'], properties: { digital_identifiers: { minItems: 1 } } },
        { required: ['device'] },
        { required: ['payment_method'] },
      ],
    });
}

/**
 * The onboarding request, validated as the api receives it; LTV is a decimal string in the
 * reporting currency. One schema per currency (the pattern depends on its minor units).
 */
export function onboardingRequestSchema(currency: string) {
  let schema = requestSchemas.get(currency);
  if (!schema) requestSchemas.set(currency, (schema = buildRequestSchema(currency)));
  return schema;
}
export type OnboardingRequest = z.input<ReturnType<typeof onboardingRequestSchema>>;

/** What the workflow carries: validated, normalised, junk dropped, token encrypted. */
export interface OnboardingPlan {
  customer: { segment: string; ltv_minor: number; acquisition_date?: string | undefined };
  payment_method: PaymentMethodRow | null;
  device: { fingerprint: string; ip?: string | undefined; user_agent?: string | undefined } | null;
  address: z.output<typeof addressInput> | null;
  digital_identifiers: { type: IdentifierType; value: string; is_verified: boolean }[];
  /** Who the customer is, when the request said (a part not said is null); null when it said nothing. */
  person: Person | null;
  /** Values that were dropped as placeholders (kinds only, never the values). */
  ignored: { field: string; reason: 'junk' | 'duplicate' | 'wallet_full' }[];
}

/** Validates and prepares an onboarding request. Throws InvalidInputError naming the field. */
export function prepareOnboarding(g: Pick<Graph, 'tokens' | 'policy'>, request: unknown): OnboardingPlan {
  const currency = g.policy.reportingCurrency;
  const r = parseInput(onboardingRequestSchema(currency), request, '');
  const ignored: OnboardingPlan['ignored'] = [];
  const seen = new Set<string>();
  const identifiers: OnboardingPlan['digital_identifiers'] = [];
  r.digital_identifiers.forEach((ident, n) => {
    const field = `digital_identifiers.${n}.value`;
    const value = normaliseIdentifier(ident.type, ident.value, g.policy.defaultPhoneRegion, field);
    if (isJunkIdentifier(ident.type, value)) return ignored.push({ field, reason: 'junk' });
    if (seen.has(`${ident.type}:${value}`)) return ignored.push({ field, reason: 'duplicate' });
    seen.add(`${ident.type}:${value}`);
    identifiers.push({ type: ident.type, value, is_verified: ident.is_verified });
  });
  let device: OnboardingPlan['device'] = null;
  if (r.device) {
    if (isJunkFingerprint(r.device.fingerprint)) ignored.push({ field: 'device.fingerprint', reason: 'junk' });
    else device = r.device;
  }
  if (identifiers.length === 0 && device === null && r.payment_method === undefined) {
    // Placeholders (`null`, `test@test.com`, a blank fingerprint) are dropped: nothing was left.
    throw new UnrecognisableInputError(
      'body',
      `every identity fact was a placeholder (${ignored.map((i) => i.field).join(', ')}); ${NO_IDENTITY}`,
    );
  }
  const { ltv, ...customer } = r.customer;
  return {
    customer: { ...customer, ltv_minor: toMinorUnits(ltv, currency) },
    payment_method: r.payment_method ? preparePaymentMethod(g, { ...r.payment_method, id: randomUUID() }) : null,
    device,
    address: r.address ?? null,
    digital_identifiers: identifiers,
    person: personOf(r.person),
    ignored,
  };
}

function personOf(p: { given_name?: string; family_name?: string; birth_date?: string } | undefined): Person | null {
  const person = {
    given_name: p?.given_name ?? null,
    family_name: p?.family_name ?? null,
    birth_date: p?.birth_date ?? null,
  };
  return Object.values(person).some((v) => v !== null) ? person : null;
}

/**
 * The plan as a caller that may not vouch for verification sent it: every identifier
 * unverified. "Verified" merges the request into the customer who owns the identifier (card,
 * device and address attached to them), so only the platform's verification service (scope
 * `identity:verify`) may say it; from anyone else the flag is treated as absent: the identifier
 * can only be a possible match, and is stored unverified.
 */
export function withoutVerification(plan: OnboardingPlan): OnboardingPlan {
  return { ...plan, digital_identifiers: plan.digital_identifiers.map((i) => ({ ...i, is_verified: false })) };
}
