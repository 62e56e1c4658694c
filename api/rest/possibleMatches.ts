/**
 * GET /api/v1/customers/{id}/possible-matches: a customer's possible matches, the most likely first,
 * each with the match model's probability and parts and what links the two, in words
 * (graph/matchEvidence.ts). POST /api/v1/customers/{id}/auto-links/reset (ops): the customer's
 * monthly auto-link count cleared, with a reason (graph/audit.ts `resetAutoLinks`).
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { resetAutoLinks } from '../../graph/audit';
import { observeCommits } from '../../graph/graph';
import { IDENTIFIER_TYPES, text } from '../../graph/model';
import { MODEL_COMPARISONS } from '../../graph/matchEvidence';
import { PART_SIGNALS, VERIFICATIONS } from '../../graph/matchParts';
import { answerToken, customerTokenOf } from '../consistency';
import type { ApiDeps } from '../deps';
import type { PossibleMatchEvidence } from '../../graph/matchEvidence';
import { possibleMatches } from '../services/customers';
import {
  access,
  bearerSecurity,
  consistencyHeaders,
  customerAccess,
  customerParams,
  problems,
  validationHook,
} from './common';

const sharing = {
  shared_by: z.number().int().openapi({
    description: 'Customers holding it, these two included, counted up to `limit` + 1 (where counting stops)',
  }),
  shared_beyond_limit: z.boolean().openapi({
    description: 'Held by more than `limit` customers: it names no candidates (the model weighs it as common)',
  }),
  limit: z.number().int(),
};
const cardSide = z
  .object({
    payment_method_id: z.string(),
    brand: z.string().nullable(),
    last_four: z.string().nullable(),
    expiry_month: z.number().int().nullable(),
    expiry_year: z.number().int().nullable(),
  })
  .openapi('MatchCardSide');
const addressSide = z
  .object({ address_id: z.string(), type: z.string(), city: z.string().nullable(), country: z.string() })
  .openapi('MatchAddressSide');
const partDetails = z
  .union([
    z
      .object({ type: z.enum(IDENTIFIER_TYPES), verified: z.enum(VERIFICATIONS) })
      .openapi('IdentifierEvidence', { description: '`verified`: on which of the two records it is verified' }),
    z
      .object({ device_id: z.string(), fingerprint_suffix: z.string(), ...sharing })
      .openapi('DeviceEvidence', { description: '`limit`: PERSONA_SHARED_DEVICE_LIMIT' }),
    z
      .object({
        fingerprint_suffix: z.string(),
        network: z.string().nullable(),
        this: cardSide,
        other: cardSide,
        ...sharing,
      })
      .openapi('CardEvidence', { description: 'The two payment methods with the same processor card fingerprint' }),
    z
      .object({ compared: z.array(z.string()), this: addressSide, other: addressSide, ...sharing })
      .openapi('AddressEvidence', { description: '`compared`: the fields the normalised addresses agree on' }),
    z.object({}).openapi('NoEvidenceDetails'),
  ])
  .openapi({ description: 'The evidence, by kind: `this` is the customer asked about, `other` the match' });
const matchPart = z
  .object({
    signal: z.enum(PART_SIGNALS),
    reason: z.string().openapi({ description: 'In words; never an email, phone number, street or whole fingerprint' }),
    details: partDetails,
  })
  .openapi('MatchPart');
const modelPart = z
  .object({
    comparison: z.enum(MODEL_COMPARISONS),
    level: z.string().openapi({ description: 'How the two agree on it (docs/identity.md, "The model")' }),
    bits: z.number().openapi({ description: 'Evidence for (positive) or against (negative), to a tenth' }),
    reason: z.string().openapi({ description: 'In words; never a name, date, email, number, street or fingerprint' }),
  })
  .openapi('MatchComparison');
const possibleMatch = z
  .object({
    customer_id: z.uuid(),
    status: z.enum(['active', 'suspended']),
    probability: z.number().min(0).max(1).openapi({
      description: 'The match model’s probability that the two records are one person',
    }),
    model_version: z.string().openapi({ description: 'The version of the model’s table that gave it' }),
    comparisons: z.array(modelPart).openapi({
      description: 'The model’s parts, the strongest first; empty for `customers:read` (for those who decide merges)',
    }),
    conflicts: z.array(z.string()).openapi({
      description: 'What says two people, in words: a different given name or date of birth where both know it',
    }),
    signals: z.array(z.enum(PART_SIGNALS)).openapi({ description: 'The parts’ signals, once each' }),
    parts: z.array(matchPart).openapi({ description: 'What links the two, in words: why they are side by side' }),
    found_at: z.string().nullable().openapi({
      description: 'When an onboarding last recorded the two as a possible match (either way); null if none did',
    }),
    onboarding_id: z.string().nullable(),
  })
  .openapi('PossibleMatch');

const common = { tags: ['customers'], security: bearerSecurity };

const autoLinkReset = z
  .strictObject({
    reason: text(500).openapi({
      description: 'Why, in words: recorded on the customer’s history for staff (`OpsActionRecorded`)',
    }),
  })
  .openapi('AutoLinkReset');

/** GET /api/v1/customers/{id}/possible-matches, POST /api/v1/customers/{id}/auto-links/reset. */
export function possibleMatchRoutes(deps: ApiDeps) {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  const g = deps.graph;

  app.openapi(
    createRoute({
      ...common,
      method: 'get',
      path: '/api/v1/customers/{id}/possible-matches',
      summary: 'Customers this one may be (never merged automatically), with the evidence, for review',
      description:
        'Each possible match with the match model’s probability and its parts in words, and what links ' +
        'the two, from one read transaction: customers ' +
        'an onboarding recorded as a possible match (either way) and customers sharing a device, a card ' +
        '(processor fingerprint) or an address (normalised) with this one; erased and merged records never. ' +
        'Needs `customers:read` or `identity:merge`; a customer’s own token is refused (it names others). ' +
        'Only `identity:merge` (and ops) get each part’s `details` and the model’s `comparisons`; ' +
        '`customers:read` gets `{}` and `[]` there. At most 200 matches, those with the most evidence.',
      middleware: [customerAccess(deps, { scopes: ['customers:read', 'identity:merge'] })] as const,
      request: { params: customerParams },
      responses: {
        200: {
          description: 'Possible matches, the most likely first (ties by customer id)',
          content: {
            'application/json': {
              schema: z.object({ data: z.array(possibleMatch), next_cursor: z.string().nullable() }),
            },
          },
        },
        ...problems(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const answer = await possibleMatches(g, c.req.valid('param').id);
      // The other record's card (brand, last four, expiry) and city, and the model's comparisons (the
      // same street or postcode, the same network, how many hold a value), are for whoever decides
      // merges; a service that only reads customers gets the probabilities, conflicts and reasons.
      const p = c.get('principal');
      if (p.scopes.has('ops') || p.scopes.has('identity:merge')) return c.json(answer, 200);
      const data = answer.data.map((m) => ({
        ...m,
        comparisons: [] as PossibleMatchEvidence['comparisons'],
        parts: m.parts.map((part) => ({ ...part, details: {} })),
      }));
      return c.json({ ...answer, data }, 200);
    },
  );

  autoLinkResetRoute(app, deps);
  return app;
}

/** The app `possibleMatchRoutes` builds. */
type Routes = ReturnType<typeof possibleMatchRoutes>;

/** POST /api/v1/customers/{id}/auto-links/reset (ops). */
function autoLinkResetRoute(app: Routes, deps: ApiDeps): void {
  app.openapi(
    createRoute({
      ...common,
      method: 'post',
      path: '/api/v1/customers/{id}/auto-links/reset',
      summary: 'Give a customer back the auto-links the resolution policy allows a month (ops)',
      description:
        'After the policy’s few auto-links to one customer in 30 days, onboardings that would link to it ' +
        'go to review instead (docs/identity.md, "The policy"): whoever holds the customer’s verified ' +
        'identifier and knows the person can spend them. Ops clear the count once that identifier is out ' +
        'of the wrong hands (a reset gives whoever holds it the allowance again: docs/runbook.md); the ' +
        'reason and the links cleared are recorded on the customer’s history (`OpsActionRecorded`, ' +
        'action `reset_auto_links`) when there was a link to clear, so a repeat records nothing. 409 for ' +
        'an erased or merged customer.',
      middleware: [access(deps.authenticate, { scopes: ['ops'] })] as const,
      request: {
        params: customerParams,
        body: { required: true, content: { 'application/json': { schema: autoLinkReset } } },
      },
      responses: {
        200: {
          description: 'The count is clear',
          headers: consistencyHeaders,
          content: {
            'application/json': {
              schema: z
                .object({
                  customer_id: z.uuid(),
                  cleared: z.number().int().min(0).openapi({ description: 'Auto-links of the last 30 days cleared' }),
                })
                .openapi('AutoLinksReset'),
            },
          },
        },
        ...problems(400, 401, 403, 404, 409),
      },
    }),
    async (c) => {
      const id = c.req.valid('param').id;
      const { reason } = c.req.valid('json');
      const actor = c.get('principal').subject;
      const { result, events } = await observeCommits(() => resetAutoLinks(deps.graph, id, { reason, actor }));
      answerToken(c, customerTokenOf(events, id));
      return c.json({ customer_id: id, cleared: result.cleared }, 200);
    },
  );
}
