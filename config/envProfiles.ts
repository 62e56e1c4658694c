/**
 * The identity and profile rules: the region phone numbers are read in, shared devices, device
 * trust, the reporting currency, and the VIP and Subscriber rules interactions are recorded under.
 */
import { z } from 'zod';
import { CURRENCY_PATTERN, decimalProblem, toMinorUnits } from '../payments/money';
import type { EnvOf } from './envCore';

export const profileShape = {
  /** Region national phone numbers are read in (ISO 3166-1 alpha-2). */
  PERSONA_DEFAULT_PHONE_REGION: z
    .string()
    .regex(/^[A-Z]{2}$/, 'expected an ISO 3166-1 alpha-2 code such as US')
    .default('US'),
  /** A fingerprint linked to more customers than this stops being a matching signal. */
  PERSONA_SHARED_DEVICE_LIMIT: z.coerce.number().int().min(1).default(5),
  /** A device is trusted when its trust score is at least this. */
  PERSONA_TRUST_THRESHOLD: z.coerce.number().min(0).max(1).default(0.7),
  /** The ISO 4217 currency lifetime values are counted in (integer minor units in the graph). */
  PERSONA_REPORTING_CURRENCY: z
    .string()
    .regex(CURRENCY_PATTERN, 'expected an ISO 4217 code such as USD')
    .default('USD'),
  /**
   * A customer is VIP when its segment is VIP or its lifetime value is at least this: an exact
   * decimal in the reporting currency (checked against it below).
   */
  PERSONA_VIP_LTV: z.string().trim().default('10000'),
  /**
   * Which lifetime value the VIP rule compares with PERSONA_VIP_LTV: `measured` (the sum of recorded
   * payments), `predicted` (The Oracle's predicted_ltv) or `either` (VIP when one of them reaches it).
   */
  PERSONA_VIP_BASIS: z.enum(['measured', 'predicted', 'either']).default('measured'),
  /** A customer in segment New becomes Subscriber after this many recorded succeeded payments. */
  PERSONA_SUBSCRIBER_AFTER_PAYMENTS: z.coerce.number().int().min(1).default(3),
};

export type ProfileEnv = EnvOf<typeof profileShape>;

type VipLtv = Pick<ProfileEnv, 'PERSONA_VIP_LTV' | 'PERSONA_REPORTING_CURRENCY'>;

/** What is wrong with PERSONA_VIP_LTV as an amount of the reporting currency (naming the variable), if anything. */
export function vipLtvProblem(env: VipLtv): string | undefined {
  const problem = decimalProblem(env.PERSONA_VIP_LTV, env.PERSONA_REPORTING_CURRENCY);
  return problem ? `PERSONA_VIP_LTV: ${problem} (in ${env.PERSONA_REPORTING_CURRENCY})` : undefined;
}

/** PERSONA_VIP_LTV in minor units of PERSONA_REPORTING_CURRENCY. */
export function vipLtvMinor(env: VipLtv): number {
  return toMinorUnits(env.PERSONA_VIP_LTV, env.PERSONA_REPORTING_CURRENCY);
}

/** The segment and VIP rules interactions are recorded under (graph/interactions.ts ProfileRules). */
export function profileRules(
  settings: Pick<ProfileEnv, 'PERSONA_VIP_BASIS' | 'PERSONA_SUBSCRIBER_AFTER_PAYMENTS'> & { vipLtvMinor: number },
): {
  vipLtvMinor: number;
  vipBasis: ProfileEnv['PERSONA_VIP_BASIS'];
  subscriberAfterPayments: number;
} {
  return {
    vipLtvMinor: settings.vipLtvMinor,
    vipBasis: settings.PERSONA_VIP_BASIS,
    subscriberAfterPayments: settings.PERSONA_SUBSCRIBER_AFTER_PAYMENTS,
  };
}
