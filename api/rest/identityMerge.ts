/**
 * Identity merges (docs/api.md "Identity merges"):
 *   POST /api/v1/identity-merges                      propose a merge (ops, identity:merge, a customer of either)
 *   GET  /api/v1/identity-merges/{merge_id}           its status
 *   POST /api/v1/identity-merges/{merge_id}/confirm   a customer consents, with the code sent to them
 *   POST /api/v1/identity-merges/{merge_id}/decline   a customer declines
 *   POST /api/v1/identity-merges/{merge_id}/undo      ops take the merge back (within PERSONA_UNMERGE_DAYS)
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { text } from '../../graph/model';
import type { ApiDeps } from '../deps';
import { answerMerge, mergeStatus, proposeMerge, undoMerge } from '../services/identityMerge';
import { access, bearerSecurity, problems, validationHook } from './common';

const party = z.object({
  customer_id: z.string(),
  channel: z.enum(['email', 'sms']).nullable(),
  decision: z.enum(['confirmed', 'declined']).nullable(),
  decided_at: z.string().nullable(),
});
const ids = z.array(z.string());
const statusSchema = z
  .object({
    merge_id: z.string(),
    survivor_id: z.string(),
    merged_id: z.string(),
    state: z.enum([
      'asking_consent',
      'awaiting_consent',
      'merging',
      'merged',
      'undoing',
      'undone',
      'declined',
      'expired',
      'refused',
      'unreachable',
      'cancelled',
    ]),
    decided_by: z.enum(['consent', 'ops']),
    consent: z.array(party).openapi({ description: 'Each customer’s part when consent is asked (survivor first)' }),
    consent_deadline: z.string().nullable(),
    merged_at: z.string().nullable(),
    undo_deadline: z.string().nullable(),
    moved: z
      .object({
        payment_methods: ids,
        devices: ids,
        addresses: ids,
        identifiers: ids,
        ltv_minor_moved: z.number().int(),
        redirected: ids,
      })
      .nullable()
      .openapi({ description: 'What the merge moved to the survivor (the manifest is on the CustomersMerged events)' }),
    unmerge: z
      .object({
        restored: z.object({ payment_methods: ids, devices: ids, addresses: ids, identifiers: ids }),
        not_restored: z.array(z.object({ kind: z.string(), id: z.string().nullable(), reason: z.string() })),
      })
      .nullable(),
    problem: z.string().nullable().openapi({ description: 'Why the merge did not happen, or an undo was refused' }),
  })
  .openapi('IdentityMergeStatus');

const mergeParams = z.object({
  merge_id: z
    .string()
    .regex(/^identity-merge-[0-9a-f-]{36}-[0-9a-f-]{36}$/, 'must be an identity merge id (identity-merge-<id>-<id>)')
    .openapi({ param: { name: 'merge_id', in: 'path' }, example: 'identity-merge-<customer id>-<customer id>' }),
});
const proposal = z
  .strictObject({
    survivor_id: z.uuid().openapi({ description: 'The record that stays' }),
    merged_id: z.uuid().openapi({ description: 'The record that becomes a tombstone `merged_into` the survivor' }),
    consent: z
      .boolean()
      .default(true)
      .openapi({
        description:
          'Ask both customers, through a verified email or phone of each, and merge only if both confirm (default). ' +
          'false: ops decide alone (scope ops only: a service or a customer’s own token always needs both consents)',
      }),
    reason: text(500).optional(),
  })
  .openapi('IdentityMergeProposal');
const decision = z
  .strictObject({
    customer_id: z.uuid().openapi({ description: 'The record the answer is for' }),
    code: z
      .string()
      .min(1, 'must not be empty')
      .max(32, 'at most 32 characters')
      .openapi({ description: 'The code the request for consent carried to that record’s verified email or phone' }),
  })
  .openapi('IdentityMergeDecision');
const common = { tags: ['identity merges'], security: bearerSecurity };
const status = (description: string) => ({ description, content: { 'application/json': { schema: statusSchema } } });

export function identityMergeRoutes(deps: ApiDeps) {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  // A customer's own token passes here; the service lets it act only for its own record.
  const partyOrScope = access(deps.authenticate, { scopes: ['identity:merge', 'self'] });
  addProposalRoutes(app, deps, partyOrScope);
  addAnswerRoutes(app, deps, partyOrScope);
  return app;
}

/** The app `identityMergeRoutes` builds (the functions below add routes to it). */
type Routes = ReturnType<typeof identityMergeRoutes>;

/** POST /api/v1/identity-merges, GET /api/v1/identity-merges/{merge_id}. */
function addProposalRoutes(app: Routes, deps: ApiDeps, partyOrScope: MiddlewareHandler) {
  app.openapi(
    createRoute({
      ...common,
      method: 'post',
      path: '/api/v1/identity-merges',
      summary:
        'Propose merging two customer records: starts identity-merge-<pair> (A→B and B→A are the same merge; ' +
        'a running one is answered as it is). 409 when either customer is suspended, erased or merged',
      middleware: [partyOrScope] as const,
      request: { body: { required: true, content: { 'application/json': { schema: proposal } } } },
      responses: {
        200: status('A merge of this pair runs already: its status'),
        202: status('Started: asking both customers for consent, or merging (ops)'),
        ...problems(400, 401, 403, 404, 409),
      },
    }),
    async (c) => {
      const r = await proposeMerge(deps, c.req.valid('json'), c.get('principal'));
      return r.created ? c.json(r.status, 202) : c.json(r.status, 200);
    },
  );
  app.openapi(
    createRoute({
      ...common,
      method: 'get',
      path: '/api/v1/identity-merges/{merge_id}',
      summary: 'An identity merge’s status',
      middleware: [access(deps.authenticate, { scopes: ['identity:merge', 'customers:read', 'self'] })] as const,
      request: { params: mergeParams },
      responses: { 200: status('The status query'), ...problems(400, 401, 403, 404) },
    }),
    async (c) => c.json(await mergeStatus(deps, c.req.valid('param').merge_id, c.get('principal')), 200),
  );
}

/** POST /api/v1/identity-merges/{merge_id}/confirm and …/decline (a customer answers), …/undo (ops). */
function addAnswerRoutes(app: Routes, deps: ApiDeps, partyOrScope: MiddlewareHandler) {
  for (const answer of ['confirm', 'decline'] as const) {
    app.openapi(
      createRoute({
        ...common,
        method: 'post',
        path: `/api/v1/identity-merges/{merge_id}/${answer}`,
        summary:
          answer === 'confirm'
            ? 'A customer consents to the merge, with the code sent to them. The second consent merges, and the ' +
              'answer says so; 409 for a wrong code, a second answer, or a merge no longer waiting'
            : 'A customer declines: the merge ends and nothing changes. 409 as for confirm',
        middleware: [partyOrScope] as const,
        request: {
          params: mergeParams,
          body: { required: true, content: { 'application/json': { schema: decision } } },
        },
        responses: { 200: status('The answer was taken: the merge’s status'), ...problems(400, 401, 403, 404, 409) },
      }),
      async (c) =>
        c.json(
          await answerMerge(deps, c.req.valid('param').merge_id, answer, c.req.valid('json'), c.get('principal')),
          200,
        ),
    );
  }
  app.openapi(
    createRoute({
      ...common,
      method: 'post',
      path: '/api/v1/identity-merges/{merge_id}/undo',
      summary:
        'Undo a merge (ops, within PERSONA_UNMERGE_DAYS): what the manifest moved goes back, except what was ' +
        'deleted or changed since, which is reported. 409 naming why when it cannot be undone',
      middleware: [access(deps.authenticate, { scopes: ['ops'] })] as const,
      request: {
        params: mergeParams,
        body: {
          required: true,
          content: {
            'application/json': { schema: z.strictObject({ reason: text(500) }).openapi('IdentityMergeUndo') },
          },
        },
      },
      responses: { 200: status('Undone: what was restored and what was not'), ...problems(400, 401, 403, 404, 409) },
    }),
    async (c) =>
      c.json(await undoMerge(deps, c.req.valid('param').merge_id, c.req.valid('json').reason, c.get('principal')), 200),
  );
}
