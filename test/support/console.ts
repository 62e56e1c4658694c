/**
 * Using the console (/console) in a test as a browser does, without a browser: sign in through the
 * sign-in form (its double-submit cookie and hidden CSRF value), keep the session cookie, and post
 * forms with the page's CSRF token. Works with any app that has `request` (Hono's `app.request`).
 */
import type { Requestable } from './http';

/** The `name=value` part of a Set-Cookie of this name, or undefined. */
export function cookieFrom(res: Response, name: string): string | undefined {
  const set = res.headers.getSetCookie().find((c) => c.startsWith(`${name}=`));
  return set?.split(';')[0];
}

/** The value of the first hidden `_csrf` field of a page. */
export function csrfOf(html: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!match?.[1]) throw new Error('the page has no _csrf field');
  return match[1];
}

/** The headers a same-origin browser request of the session carries. */
export function browserHeaders(cookie: string, extra: Record<string, string> = {}): Record<string, string> {
  return { cookie, 'sec-fetch-site': 'same-origin', ...extra };
}

/**
 * Signs in with `token` through the sign-in form; the session cookie (`__Host-persona-console=…`),
 * to send as the `Cookie` header. Throws when the sign-in is refused.
 */
export async function signIn(app: Requestable, token: string): Promise<string> {
  const form = await app.request('/console/sign-in');
  const nonce = cookieFrom(form, '__Host-persona-sign-in');
  if (!nonce) throw new Error(`the sign-in page set no sign-in cookie (${form.status})`);
  const res = await app.request('/console/sign-in', {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      cookie: nonce,
      'sec-fetch-site': 'same-origin',
    },
    body: new URLSearchParams({ token, _csrf: csrfOf(await form.text()) }).toString(),
  });
  const session = cookieFrom(res, '__Host-persona-console');
  if (res.status !== 303 || !session) throw new Error(`sign-in answered ${res.status}: ${await res.text()}`);
  return session;
}

/** A GET of a console page with the session, as a browser sends it (redirects not followed). */
export function getPage(app: Requestable, path: string, cookie: string): Promise<Response> {
  return Promise.resolve(app.request(path, { headers: browserHeaders(cookie), redirect: 'manual' }));
}

/** Posts a form (url-encoded) with the session, as a browser does; add `_csrf` from the page. */
export function postForm(
  app: Requestable,
  path: string,
  cookie: string,
  fields: Record<string, string>,
): Promise<Response> {
  return Promise.resolve(
    app.request(path, {
      method: 'POST',
      headers: browserHeaders(cookie, { 'content-type': 'application/x-www-form-urlencoded' }),
      body: new URLSearchParams(fields).toString(),
      redirect: 'manual',
    }),
  );
}

/** The hidden fields of the form that posts to `action` on a page (the first such form). */
export function formFields(html: string, action: string): Record<string, string> {
  const start = html.indexOf(`action="${action}"`);
  if (start < 0) throw new Error(`no form posts to ${action}`);
  const form = html.slice(start, html.indexOf('</form>', start));
  const fields: Record<string, string> = {};
  for (const m of form.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g))
    fields[m[1] as string] = decodeHtml(m[2] as string);
  return fields;
}

/** A phone number no other test has: a random number of the North American plan, in E.164. */
export function uniqueUsPhone(): string {
  return `+1${200 + Math.floor(Math.random() * 800)}${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
}

/** HTML's escapes in an attribute value, undone. */
export function decodeHtml(s: string): string {
  return s
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}
