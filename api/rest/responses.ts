/** Response shapes shared by REST resources (and mirrored by the proto). */
import { z } from '@hono/zod-openapi';
import { PAYMENT_METHOD_STATUSES, PAYMENT_METHOD_TYPES } from '../../graph/model';

export const walletItemSchema = z
  .object({
    id: z.uuid(),
    type: z.enum(PAYMENT_METHOD_TYPES),
    status: z.enum(PAYMENT_METHOD_STATUSES),
    brand: z.string().nullable(),
    last_four: z.string().nullable(),
    expiry_month: z.number().int().nullable(),
    expiry_year: z.number().int().nullable(),
    is_default: z.boolean(),
    last_used: z.string().nullable(),
  })
  .openapi('WalletItem');

/** The Oracle's prediction, beside the measured `ltv` (context and profile). */
export const predictedLtvField = z
  .string()
  .nullable()
  .openapi({
    description:
      'The Oracle’s predicted lifetime value (`ltv_feedback` interactions), an exact decimal in ' +
      '`ltv_currency`; null when none was reported. Never added to `ltv`; PERSONA_VIP_BASIS says whether ' +
      'the VIP rule uses it',
  });

/** On a context or checkout answer served from the api's cache while Neo4j could not answer. */
export const staleFields = {
  stale: z
    .literal(true)
    .optional()
    .openapi({ description: 'Present when Neo4j could not answer in time and this is the api’s cached copy' }),
  as_of: z
    .string()
    .optional()
    .openapi({ description: 'With `stale`: when the answer was last known to be current (RFC 3339)' }),
};

/**
 * On an answer for the id of a merged customer (the tombstone of a merge): the survivor whose data
 * it is. Absent for any other id. docs/api.md "After a merge".
 */
export const mergedIntoFields = {
  merged_into: z
    .uuid()
    .optional()
    .openapi({
      description:
        'Present only when the id asked for was merged into another customer: the survivor (its id), whose ' +
        'data this is. Use that id from now on; writes to the merged id are refused (409)',
    }),
};

export const customerContextSchema = z
  .object({
    customer_id: z.uuid(),
    status: z.string(),
    segment: z.string(),
    is_vip: z.boolean(),
    ltv: z.string().openapi({ description: 'Lifetime value: an exact decimal in `ltv_currency`, e.g. "1234.50"' }),
    ltv_currency: z.string().openapi({ description: 'The reporting currency (ISO 4217)' }),
    predicted_ltv: predictedLtvField,
    trusted_devices: z.array(z.object({ device_id: z.string(), fingerprint: z.string(), trust_score: z.number() })),
    default_payment_method_id: z.string().nullable(),
    active_payment_methods: z.array(z.string()),
    ...mergedIntoFields,
    ...staleFields,
  })
  .openapi('CustomerContext');
