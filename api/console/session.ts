/**
 * The console's session: the same JWT the REST api takes, kept in an `HttpOnly`, `Secure`,
 * `SameSite=Strict` cookie (`__Host-` prefixed: this host only, path /, never readable by a script),
 * checked with the api's own authenticator on every request, so a token that expires or grows too
 * old ends the session with it.
 *
 * CSRF: every state-changing form carries a token bound to the session, an HMAC of the session's
 * JWT under a key derived from the api's secret; a form without it, or with another session's,
 * is refused (403) before anything runs. The sign-in form, which has no session yet, carries a
 * random value that must equal the one in a short-lived pre-session cookie (double submit), so no
 * other site can sign a browser into a session of its choosing. `SameSite=Strict` and the
 * `Sec-Fetch-Site` check are further walls, not the only one.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { Principal } from '../auth';

/** Cookie names, without the `__Host-` prefix Hono adds (`prefix: 'host'`). */
export const SESSION_COOKIE = 'persona-console';
export const SIGN_IN_COOKIE = 'persona-sign-in';
export const CSRF_FIELD = '_csrf';

export interface ConsoleSession {
  /** The session's JWT: only ever sent back to this api, never rendered. */
  token: string;
  principal: Principal;
  /** The CSRF token every state-changing form of this session carries. */
  csrf: string;
}

/** The key CSRF tokens are made with: derived from the api's secret, so every api instance agrees. */
export function csrfKey(secret: string): Buffer {
  return createHmac('sha256', secret).update('persona-console-csrf-v1').digest();
}

export function csrfTokenFor(key: Buffer, sessionToken: string): string {
  return createHmac('sha256', key).update(sessionToken).digest('base64url');
}

/** Constant-time equality of two strings (false for different lengths, without early exit). */
export function sameSecret(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y) && a.length === b.length;
}

const COOKIE_BASE = { path: '/', httpOnly: true, secure: true, sameSite: 'Strict' } as const;

/** Keeps the session's token in its cookie for as long as the token itself lives (at most). */
export function startSession(c: Context, token: string, expiresAtSeconds: number): void {
  const maxAge = Math.max(1, expiresAtSeconds - Math.floor(Date.now() / 1000));
  setCookie(c, SESSION_COOKIE, token, { ...COOKIE_BASE, maxAge, prefix: 'host' });
}

export function endSession(c: Context): void {
  deleteCookie(c, SESSION_COOKIE, { ...COOKIE_BASE, prefix: 'host' });
}

export function sessionToken(c: Context): string | undefined {
  return getCookie(c, SESSION_COOKIE, 'host');
}

/** The sign-in form's double-submit value: a fresh one in a 10-minute cookie, the same in the form. */
export function signInNonce(c: Context): string {
  const nonce = randomBytes(24).toString('base64url');
  setCookie(c, SIGN_IN_COOKIE, nonce, { ...COOKIE_BASE, maxAge: 600, prefix: 'host' });
  return nonce;
}

export function signInNonceCookie(c: Context): string | undefined {
  return getCookie(c, SIGN_IN_COOKIE, 'host');
}

export function clearSignInNonce(c: Context): void {
  deleteCookie(c, SIGN_IN_COOKIE, { ...COOKIE_BASE, prefix: 'host' });
}

/** The `exp` of a JWT the authenticator accepted already (its claims, unverified here, are trusted). */
export function tokenExpiry(token: string): number {
  const payload = token.split('.')[1] ?? '';
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown };
  return typeof claims.exp === 'number' ? claims.exp : Math.floor(Date.now() / 1000) + 600;
}
