/**
 * One call to the REST api as the integration tests make it: a bearer token, a JSON body, and
 * the reply's status, headers, text and parsed JSON. It goes to the app in the test's own process
 * (Hono's `app.request`) or, through `overHttp`, to an api process listening on a port.
 */

/** What a call goes to: Hono's `app.request`, or anything shaped like it. */
export interface Requestable {
  request(path: string, init?: RequestInit): Response | Promise<Response>;
}

/** An api process listening at `url` (no trailing slash), called with fetch. */
export function overHttp(url: string): Requestable {
  return { request: (path, init) => fetch(`${url}${path}`, init) };
}

export interface SendOptions {
  /** The bearer token (`authorization: Bearer …`); absent or null: no authorization header. */
  token?: string | null;
  /** Sent as JSON (`JSON.stringify`, with content-type application/json); absent: no body. */
  body?: unknown;
  /** A body sent exactly as given, with content-type application/json (e.g. JSON that is not valid). */
  raw?: string;
  /** More headers; they win over the ones above (e.g. a content-type on a call without a body). */
  headers?: Record<string, string>;
  /**
   * How the reply is read: 'json' (the default) parses it at once, and a body that is not JSON
   * fails the call as `Response.json()` does; 'text' keeps the text and parses `json` on first use.
   */
  read?: 'json' | 'text';
  /** What `json` is when the body is empty (`{}`, `null`…); without it an empty body is not JSON. */
  empty?: unknown;
}

export interface Reply<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  /** The body as it came. */
  text: string;
  /** The body parsed (see SendOptions `read` and `empty`). */
  json: T;
}

/** Calls `method path` on the api with the token and body of `options`; its reply, read in full. */
export async function send<T = Record<string, unknown>>(
  to: Requestable,
  method: string,
  path: string,
  options: SendOptions = {},
): Promise<Reply<T>> {
  const { token, body, raw, headers = {} } = options;
  const payload = raw ?? (body === undefined ? undefined : JSON.stringify(body));
  const res = await to.request(path, {
    method,
    headers: {
      ...(token === undefined || token === null ? {} : { authorization: `Bearer ${token}` }),
      ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(payload === undefined ? {} : { body: payload }),
  });
  const text = await res.text();
  const parse = (): T => (text === '' && 'empty' in options ? options.empty : JSON.parse(text)) as T;
  const reply = { status: res.status, headers: res.headers, text } as Reply<T>;
  if (options.read !== 'text') reply.json = parse();
  else {
    // Parsed on first use, once: a text reply need not be JSON.
    let parsed: { value: T } | undefined;
    Object.defineProperty(reply, 'json', { enumerable: true, get: () => (parsed ??= { value: parse() }).value });
  }
  return reply;
}
