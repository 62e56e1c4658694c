/** POST /api/v1/onboarding — start (or find) the onboarding for an Idempotency-Key. */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { onboardingRequestSchema } from '../../graph/onboardingRequest';
import { IDEMPOTENCY_KEY_PATTERN } from '../../temporal/workflowIds';
import type { ApiDeps } from '../deps';
import { startOnboarding } from '../services/onboarding';
import { access, bearerSecurity, problems, validationHook } from './common';

const accepted = z.object({ workflow_id: z.string() }).openapi('OnboardingAccepted');
const possibleMatch = z
  .object({
    customer_id: z.uuid(),
    probability: z.number().min(0).max(1).openapi({
      description: 'The match model’s probability that the two are one person (docs/identity.md)',
    }),
  })
  .openapi('OnboardingPossibleMatch');
const result = z
  .object({
    customer_id: z.uuid(),
    outcome: z.enum(['created', 'matched']),
    possible_match_count: z
      .number()
      .int()
      .openapi({
        description:
          'How many existing customers may be the same person (ops review them). A caller without ' +
          '`identity:merge` or `ops` counts only those a shared email, phone or device found, never those ' +
          'found by the person alone',
      }),
    possible_matches: z
      .array(possibleMatch)
      .optional()
      .openapi({
        description:
          'Those customers, the most likely first (ties by id): only for a caller with `identity:merge` or `ops` ' +
          '(they are other customers). Their evidence, in words: `GET /api/v1/customers/{id}/possible-matches`',
      }),
    workflow_id: z.string(),
  })
  .openapi('OnboardingResult');

export function onboardingRoutes(deps: ApiDeps) {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  // The graph module's schema, used as is: REST, gRPC and the graph refuse the same requests.
  const onboardingRequest = onboardingRequestSchema(deps.graph.policy.reportingCurrency);
  const route = createRoute({
    method: 'post',
    path: '/api/v1/onboarding',
    tags: ['onboarding'],
    summary: 'Onboard a customer',
    description:
      'Starts the onboarding workflow `onboarding-<Idempotency-Key>`. The same key again starts nothing new ' +
      'and answers the same; the same key with a different body is refused (422). ' +
      'With `?wait=true` the answer is the result. A `segment` or `ltv` other than the defaults (New, 0) ' +
      'needs `customers:write` (403 otherwise).',
    security: bearerSecurity,
    middleware: [access(deps.authenticate, { scopes: ['onboarding:write'] })] as const,
    request: {
      headers: z.object({
        'idempotency-key': z
          .string()
          .regex(IDEMPOTENCY_KEY_PATTERN, 'must be 1–200 characters of letters, digits and . _ : -')
          .openapi({ description: 'Unique per onboarding; a retry sends the same key' }),
      }),
      query: z.object({ wait: z.enum(['true', 'false']).optional().openapi({ description: 'Wait for the result' }) }),
      body: { required: true, content: { 'application/json': { schema: onboardingRequest } } },
    },
    responses: {
      200: {
        description: 'The onboarding finished (`?wait=true`)',
        content: { 'application/json': { schema: result } },
      },
      202: {
        description: 'The onboarding runs; follow it by its workflow id',
        content: { 'application/json': { schema: accepted } },
      },
      ...problems(400, 401, 403, 413, 422),
    },
  });
  app.openapi(route, async (c) => {
    const answer = await startOnboarding(
      deps,
      c.req.valid('header')['idempotency-key'],
      c.req.valid('json'),
      c.req.valid('query').wait === 'true',
      await deps.authenticate(c.req.header('authorization')),
      c.req.header('authorization'),
    );
    return answer.status === 200 ? c.json(answer.body, 200) : c.json(answer.body, 202);
  });
  return app;
}
