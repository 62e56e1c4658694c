/**
 * The codec server (Temporal's remote codec protocol) for ops, scope `ops`:
 *   POST /codec/decode   payloads as Temporal stores them → readable
 *   POST /codec/encode   readable payloads → as Persona's clients would send them (the service key)
 *
 * Who asks: a bearer token in `Authorization`, or, when no such header is sent, the console's
 * session cookie (`__Host-persona-console`, api/console/session.ts), checked by the same
 * authenticator. `temporal workflow show --codec-endpoint http://<api>/codec --codec-auth 'Bearer <ops token>'`
 * prints a history readable; so does the Temporal UI for someone signed in to the console as ops:
 * the UI (at PERSONA_CODEC_CORS_ORIGIN, the only origin CORS lets read the answers) calls the codec
 * with `includeCredentials` (fetch `credentials: 'include'`), and the browser sends the session
 * cookie with it, since the UI and the api are one site (`localhost:8233` and `localhost:8080`:
 * cookies are not port-scoped and SameSite=Strict compares sites). Without the endpoint, or with
 * any other token or session (a customer's own, none), it stays ciphertext. Neither endpoint
 * changes anything, so a same-site request the cookie rides on cannot make the codec do harm;
 * and no other origin may read what it answers.
 *
 * A payload whose history key erasure destroyed comes back as it came (still encrypted): it can no
 * longer be read by anyone. Every decode is logged with the caller's subject and how they asked
 * (who read whose payloads), never with what they hold.
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Payload } from '@temporalio/common';
import type { Context, MiddlewareHandler } from 'hono';
import { problemResponse, problemType } from '../../runtime/problem';
import { sessionToken } from '../console/session';
import type { ApiDeps } from '../deps';
import { access, bearerSecurity, problems, validationHook } from './common';
import type { Credentials } from './guards';

/** A codec request's largest body (a page of history payloads; Temporal's own limit per payload is 2 MB). */
export const CODEC_MAX_BODY_BYTES = 4 * 1024 * 1024;

/** Standard base64, as protobuf's JSON writes bytes (a pattern the OpenAPI document carries too). */
const base64 = z
  .string()
  .regex(/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/, 'must be base64')
  .max(CODEC_MAX_BODY_BYTES);

const payloadJson = z
  .object({
    metadata: z.record(z.string().max(256), base64).optional(),
    data: base64.optional(),
  })
  .openapi('CodecPayload');
// An empty list is `{}` in protobuf's JSON (the CLI sends one for an event without payloads).
const payloadsJson = z
  .object({ payloads: z.array(payloadJson).max(10_000, 'at most 10,000 payloads per request').default([]) })
  .openapi('CodecPayloads');

type PayloadJson = z.infer<typeof payloadJson>;

function fromJson(p: PayloadJson): Payload {
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
    data: Buffer.from(p.data ?? '', 'base64'),
  };
}

function toJson(p: Payload): PayloadJson {
  return {
    metadata: Object.fromEntries(
      Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? new Uint8Array()).toString('base64')]),
    ),
    data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
  };
}

const namespaceHeader = z.object({
  'x-namespace': z
    .string()
    .max(255)
    .optional()
    .openapi({ description: 'The namespace of the payloads (informational)' }),
});

/**
 * The codec's credentials: the `Authorization` header when one is sent (a wrong one is refused, not
 * passed over), else the console's session token from its cookie, as a bearer token, but only for
 * a browser request from the Temporal UI's origin (`Origin` = PERSONA_CODEC_CORS_ORIGIN): another
 * page of the same site cannot spend an ops session's cookie on the codec, even blind.
 */
export function codecCredentials(uiOrigin: string): Credentials {
  return (c) => {
    const header = c.req.header('authorization');
    if (header !== undefined) return header;
    if (!uiOrigin || c.req.header('origin') !== uiOrigin) return undefined;
    const token = sessionToken(c);
    return token ? `Bearer ${token}` : undefined;
  };
}

/** How a codec caller asked, for the log. */
const askedWith = (c: Context): 'bearer' | 'console session' | 'none' =>
  c.req.header('authorization') !== undefined ? 'bearer' : sessionToken(c) ? 'console session' : 'none';

/** A codec request always has a body (`{}` is an empty list): none at all is a 400 naming it. */
const requireBody: MiddlewareHandler = async (c, next) => {
  // Read once here; Hono keeps it for the body's validator.
  if ((await c.req.text()).trim() === '')
    return problemResponse(c, {
      type: problemType('invalid-input'),
      title: 'Invalid input',
      status: 400,
      detail: 'body: required ({"payloads": [...]})',
      field: 'body',
    });
  await next();
};

export function codecRoutes(deps: ApiDeps) {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  const opsOnly = access(deps.authenticate, { scopes: ['ops'] }, codecCredentials(deps.payloads.corsOrigin));
  const codec = deps.payloads.codec;
  const route = (path: '/codec/decode' | '/codec/encode', summary: string) =>
    createRoute({
      method: 'post',
      path,
      tags: ['codec'],
      security: bearerSecurity,
      summary,
      description:
        'A bearer token with scope `ops`; or, with no `Authorization` header (the Temporal UI’s credentialed ' +
        'fetch from PERSONA_CODEC_CORS_ORIGIN), the console’s session cookie `__Host-persona-console` of an ' +
        'ops session.',
      middleware: [opsOnly, requireBody] as const,
      request: {
        headers: namespaceHeader,
        body: { required: true, content: { 'application/json': { schema: payloadsJson } } },
      },
      responses: {
        200: { description: 'The payloads, in order', content: { 'application/json': { schema: payloadsJson } } },
        ...problems(400, 401, 403, 413),
      },
    });

  app.openapi(
    route(
      '/codec/decode',
      'Decrypt payloads for ops (Temporal’s codec-server protocol); ' +
        'a payload whose key erasure destroyed comes back unchanged',
    ),
    async (c) => {
      const { payloads } = c.req.valid('json');
      const decoded = await codec.decodeWhereReadable(payloads.map(fromJson));
      deps.logger.info(
        {
          actor: c.get('principal')?.subject ?? null,
          credentials: askedWith(c),
          namespace: c.req.valid('header')['x-namespace'] ?? null,
          payloads: payloads.length,
          unreadable: decoded.unreadable.length,
        },
        'codec server: payloads decoded for ops',
      );
      return c.json({ payloads: decoded.payloads.map(toJson) }, 200);
    },
  );
  app.openapi(
    route('/codec/encode', 'Encrypt payloads as Persona’s clients do (the active service key), for ops sending input'),
    async (c) => {
      const { payloads } = c.req.valid('json');
      return c.json({ payloads: (await codec.encode(payloads.map(fromJson))).map(toJson) }, 200);
    },
  );
  return app;
}
