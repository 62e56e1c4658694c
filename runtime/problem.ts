/** RFC 9457 problem details: the one error shape of every HTTP answer Persona gives. */
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  [extension: string]: unknown;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** Problem type URIs are relative references into our docs, stable for clients to switch on. */
export function problemType(slug: string): string {
  return `/problems/${slug}`;
}

export function problemResponse(c: Context, problem: Problem): Response {
  return c.body(JSON.stringify({ instance: c.req.path, ...problem }), problem.status as ContentfulStatusCode, {
    'content-type': PROBLEM_CONTENT_TYPE,
  });
}
