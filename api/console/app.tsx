/**
 * The console, served by the api under /console: server-rendered pages (Hono's JSX) for support
 * and fraud ops (find a customer, the customer page, the actions ops decide) and for the customer
 * (/console/me). No separate front-end server, nothing from a CDN: the page script, the style sheet
 * and cytoscape.js (from its npm package) are served from /console/static.
 *
 * Every page: the session cookie (api/console/session.ts) checked with the api's authenticator;
 * a strict Content-Security-Policy (scripts and styles from this origin only, no inline script,
 * no framing, forms post only here); every POST carries the session's CSRF token. A page request
 * without a (valid) session is redirected to the sign-in page, which takes a JWT like the api.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Hono, type Context, type ErrorHandler, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { except } from 'hono/combine';
import { HTTPException } from 'hono/http-exception';
import { repoRoot } from '../../config/env';
import { CustomerMergedError, DomainError } from '../../graph/errors';
import { DependencyUnavailableError, unavailableDependency } from '../../runtime/dependencies';
import { UnreadablePayloadError } from '../../temporal/payloadCodec';
import { AuthError } from '../auth';
import { addressKey } from '../clientAddress';
import type { ApiDeps } from '../deps';
import { mergedRecordRefusal } from '../services/mergedIds';
import { admit, admitPerson, RateLimitedError } from '../rateLimit';
import { answeredOutOfTime } from '../deadlines';
import { routeCost } from '../routeWeights';
import { pageHeaders, requestCallerAddress } from '../rest/guards';
import {
  can,
  isCustomerSession,
  Page,
  render,
  safeBack,
  type ActionText,
  type ConsoleAction,
  type FormFields,
  formOf,
} from './kit';
import { meConsole } from './me';
import { opsConsole } from './ops';
import {
  clearSignInNonce,
  type ConsoleSession,
  CSRF_FIELD,
  csrfKey,
  csrfTokenFor,
  endSession,
  sameSecret,
  sessionToken,
  signInNonce,
  signInNonceCookie,
  startSession,
  tokenExpiry,
} from './session';

/** The console's Content-Security-Policy: nothing but this origin, no inline script or style. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** The console's own files, from the repository's root (the image's, once compiled: scripts/build-image.sh). */
const STATIC_DIR = path.join(repoRoot, 'api', 'console', 'static');
const require = createRequire(import.meta.url);

/** The files under /console/static: read once, served from memory. */
function staticFiles(): Map<string, { body: string; type: string }> {
  const own = (name: string) => readFileSync(path.join(STATIC_DIR, name), 'utf8');
  return new Map([
    ['console.css', { body: own('console.css'), type: 'text/css; charset=utf-8' }],
    ['console.js', { body: own('console.js'), type: 'text/javascript; charset=utf-8' }],
    ['graph.js', { body: own('graph.js'), type: 'text/javascript; charset=utf-8' }],
    [
      'cytoscape.min.js',
      { body: readFileSync(require.resolve('cytoscape/dist/cytoscape.min.js'), 'utf8'), type: 'text/javascript' },
    ],
  ]);
}

/** A page that says what went wrong, in the console's frame. */
function problemPage(
  c: Context,
  status: 400 | 401 | 403 | 404 | 409 | 410 | 413 | 429 | 500 | 503,
  title: string,
  detail: string,
) {
  const session = c.get('consoleSession') as ConsoleSession | undefined;
  return render(
    c,
    <Page title={title} session={session ?? null}>
      <p class="problem" role="alert">
        {detail}
      </p>
      <p>
        <a href="/console">Back to the console</a>
      </p>
    </Page>,
    status,
  );
}

const DOMAIN_STATUS = {
  not_found: 404,
  conflict: 409,
  invalid_input: 400,
  invalid_state: 409,
  unrecognisable_input: 400,
} as const;

/** The caller's admission: null when one request of its bucket is left, else the 429 page. */
type Admitted = (c: Context, caller: Parameters<typeof admit>[2]) => Response | Promise<Response> | null;

/** The 429 page with Retry-After. */
function limitedPage(c: Context, err: RateLimitedError): Response | Promise<Response> {
  c.header('Retry-After', String(err.retryAfterSeconds));
  return problemPage(c, 429, 'Too many requests', err.message);
}

export function consoleRoutes(deps: ApiDeps) {
  const app = new Hono();
  const files = staticFiles();
  const key = csrfKey(deps.console.secret);
  const ops = opsConsole(deps);
  const me = meConsole(deps);
  const actions = new Map<string, ConsoleAction>([...ops.actions, ...me.actions].map((a) => [a.name, a]));

  app.use('/console/*', pageHeaders(CONSOLE_CSP));
  app.use(
    '/console/*',
    bodyLimit({
      maxSize: 64 * 1024,
      onError: (c) => problemPage(c, 413, 'Too large', 'The form is larger than the console takes (64 KiB).'),
    }),
  );

  app.get('/console/static/:file', (c) => {
    const file = files.get(c.req.param('file'));
    if (!file) return c.text('Not found', 404);
    return c.body(file.body, 200, { 'content-type': file.type });
  });

  /** One request from the caller's bucket, or the 429 page with Retry-After. */
  const admitted: Admitted = (c, caller) => {
    try {
      admit(deps.rateLimiter, deps.metrics.rateLimited, caller, 'rest');
      return null;
    } catch (err) {
      if (!(err instanceof RateLimitedError)) throw err;
      return limitedPage(c, err);
    }
  };

  signInRoutes(app, deps, admitted);
  sessionRoutes(app, requireSession(deps, key));
  actionRoutes(app, deps, actions);

  app.route('/', ops.routes);
  app.route('/', me.routes);

  app.onError(consoleErrorPage(deps));
  return app;
}

// ---- sign-in and sign-out ----------------------------------------------------------------------
function signInPage(deps: ApiDeps, c: Context, message: string | null, status: 200 | 400 | 401 | 403 = 200) {
  const next = safeBack(c.req.query('next'), '/console');
  return render(
    c,
    <Page title="Sign in">
      {message ? (
        <p class="problem" role="alert">
          {message}
        </p>
      ) : null}
      <form method="post" action={`/console/sign-in?next=${encodeURIComponent(next)}`} class="sign-in">
        <input type="hidden" name={CSRF_FIELD} value={signInNonce(c)} />
        <label for="token">Your access token (a JWT)</label>
        <textarea id="token" name="token" rows={6} required autocomplete="off" spellcheck={false} />
        <p class="hint">
          {deps.console.jwks
            ? 'Tokens come from the platform’s identity provider: sign in there and paste the token it gives you.'
            : 'Locally: npm run token -- --scope ops (or --scope self --sub <customer id> --auth-time now).'}{' '}
          The token is kept in a cookie no script can read, for as long as the token is valid.
        </p>
        <button type="submit">Sign in</button>
      </form>
    </Page>,
    status,
  );
}

function signInRoutes(app: Hono, deps: ApiDeps, admitted: Admitted) {
  // The sign-in page and form have no session: the anonymous bucket of the client's address.
  const anonymousLimit: MiddlewareHandler = async (c, next) => {
    const limited = admitted(c, {
      key: `addr:${addressKey(requestCallerAddress(c, deps.trustedProxies))}`,
      rateClass: 'anonymous',
    });
    if (limited) return limited;
    await next();
  };
  app.use('/console/sign-in', anonymousLimit);

  app.get('/console/sign-in', (c) =>
    signInPage(deps, c, c.req.query('ended') ? 'Your session ended: sign in again.' : null),
  );

  app.post('/console/sign-in', async (c) => {
    const form = await formOf(c);
    const nonce = signInNonceCookie(c);
    clearSignInNonce(c);
    if (!nonce || !sameSecret(form[CSRF_FIELD], nonce))
      return signInPage(deps, c, 'The sign-in form expired or did not come from this console: try again.', 403);
    const token = (form.token ?? '').trim();
    if (!token) return signInPage(deps, c, 'token: paste your access token.', 400);
    let principal;
    try {
      principal = await deps.authenticate(`Bearer ${token}`);
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
      return signInPage(deps, c, err.message, 401);
    }
    if (!can(principal, ['customers:read']) && !(principal.scopes.has('self') && principal.subject))
      return signInPage(
        deps,
        c,
        'This token opens nothing in the console: it needs ops, customers:read, or a customer’s own token (self).',
        403,
      );
    startSession(c, token, tokenExpiry(token));
    deps.logger.info({ actor: principal.subject, scopes: [...principal.scopes] }, 'console: signed in');
    return c.redirect(safeBack(c.req.query('next'), '/console'), 303);
  });
}

// ---- everything else needs a session -----------------------------------------------------------
function requireSession(deps: ApiDeps, key: ReturnType<typeof csrfKey>): MiddlewareHandler {
  return async (c, next) => {
    const token = sessionToken(c);
    const toSignIn = (ended: boolean) => {
      if (ended) endSession(c);
      if (c.req.method === 'GET' || c.req.method === 'HEAD') {
        // Back to the page, never with a search's query (an email in the sign-in address).
        const query = c.req.path === '/console/search' ? '' : new URL(c.req.url).search;
        const next = encodeURIComponent(safeBack(c.req.path + query, '/console'));
        return c.redirect(`/console/sign-in?next=${next}${ended ? '&ended=1' : ''}`, 303);
      }
      return problemPage(c, 401, 'Signed out', 'Your session has ended: sign in again, then repeat the step.');
    };
    // Every request is paid for: by the session's token (at people's pace: its pages fan out to
    // Temporal), or without a (valid) one by the anonymous bucket of the client's address.
    const [authorization, cost] = [token ? `Bearer ${token}` : undefined, routeCost(c.req.method, c.req.path)];
    const admitted = await admitPerson(deps, authorization, requestCallerAddress(c, deps.trustedProxies), cost);
    if ('limited' in admitted) return limitedPage(c, admitted.limited);
    const { principal, authError } = admitted;
    if (!token) return toSignIn(false);
    // The identity provider's keys out of reach is not the session's fault: it is kept, and the
    // page says to try again (503), instead of signing everyone out mid-incident.
    if (authError instanceof DependencyUnavailableError) throw authError;
    if (!principal) return toSignIn(true);
    const session = { token, principal, csrf: csrfTokenFor(key, token) };
    c.set('consoleSession', session);
    if (c.req.method === 'POST') {
      // The browser says where the request comes from; another site's is refused outright.
      const site = c.req.header('sec-fetch-site');
      if (site && site !== 'same-origin' && site !== 'none')
        return problemPage(c, 403, 'Refused', 'The request came from another site.');
      const form = await formOf(c);
      if (!sameSecret(form[CSRF_FIELD], session.csrf)) {
        deps.logger.warn({ actor: principal.subject, path: c.req.path }, 'console: a form without a valid CSRF token');
        return problemPage(
          c,
          403,
          'Refused',
          'The form’s CSRF token is missing or not this session’s: reload the page.',
        );
      }
    }
    await next();
  };
}

function sessionRoutes(app: Hono, requireSession: MiddlewareHandler) {
  const open = (path: string) => path.startsWith('/console/static/') || path === '/console/sign-in';
  app.use(
    '/console/*',
    except((c) => open(c.req.path), requireSession),
  );

  app.post('/console/sign-out', (c) => {
    endSession(c);
    return c.redirect('/console/sign-in', 303);
  });

  app.get('/console', (c) => {
    const { principal } = c.get('consoleSession');
    return c.redirect(isCustomerSession(principal) ? '/console/me' : '/console/search', 303);
  });
}

// ---- actions: confirm, then act ----------------------------------------------------------------
function actionRoutes(app: Hono, deps: ApiDeps, actions: Map<string, ConsoleAction>) {
  app.post('/console/actions/:name', async (c) => {
    const session = c.get('consoleSession');
    const action = actions.get(c.req.param('name'));
    if (!action) return problemPage(c, 404, 'Not found', 'No such console action.');
    if (!action.allowed(session.principal))
      return problemPage(c, 403, 'Forbidden', 'Your token’s scopes do not allow this action.');
    const form = await formOf(c);
    const back = safeBack(form._back, '/console');
    if (form._confirmed !== 'yes') {
      const text = await action.confirm(deps, form, session);
      return render(c, confirmPage(session, action, form, text, back));
    }
    const done = await action.run(deps, form, session);
    deps.logger.info({ actor: session.principal.subject, action: action.name }, 'console: action done');
    return render(c, outcomePage(session, done, back));
  });
}

/** What the action will do, and the same fields posted again with `_confirmed=yes`. */
function confirmPage(session: ConsoleSession, action: ConsoleAction, form: FormFields, text: ActionText, back: string) {
  return (
    <Page title={text.title} session={session}>
      <div class="confirm">
        {text.details.map((d) => (
          <p>{d}</p>
        ))}
        <form method="post" action={`/console/actions/${action.name}`}>
          {Object.entries(form)
            .filter(([name]) => name !== '_confirmed')
            .map(([name, value]) => (
              <input type="hidden" name={name} value={value} />
            ))}
          <input type="hidden" name="_confirmed" value="yes" />
          <button type="submit" class={text.danger ? 'danger' : undefined}>
            Confirm
          </button>{' '}
          <a href={back}>Cancel</a>
        </form>
      </div>
    </Page>
  );
}

/** What the action did. */
function outcomePage(session: ConsoleSession, done: ActionText, back: string) {
  return (
    <Page title={done.title} session={session}>
      <div class="outcome" role="status">
        {done.details.map((d) => (
          <p>{d}</p>
        ))}
      </div>
      <p>
        <a href={back}>Back</a>
      </p>
    </Page>
  );
}

/** The error pages: a dependency out of reach (503), auth, domain errors, else 500 (logged). */
function consoleErrorPage(deps: ApiDeps): ErrorHandler {
  return (err, c) => {
    const unavailable = answeredOutOfTime(deps, err) ?? unavailableDependency(err);
    if (unavailable) {
      c.header('Retry-After', String(unavailable.retryAfterSeconds));
      return problemPage(c, 503, 'Unavailable', `${unavailable.message} Try again in a moment.`);
    }
    if (err instanceof AuthError)
      return problemPage(c, err.status, err.status === 401 ? 'Sign in again' : 'Forbidden', err.message);
    // A customer's own session of a merged record is never told the survivor's id.
    const session = c.get('consoleSession') as ConsoleSession | undefined;
    if (err instanceof CustomerMergedError && session && isCustomerSession(session.principal))
      return problemPage(c, 403, 'Forbidden', mergedRecordRefusal().message);
    if (err instanceof DomainError) {
      const status = DOMAIN_STATUS[err.code];
      return problemPage(
        c,
        status,
        status === 404 ? 'Not found' : status === 400 ? 'Check the form' : 'Not possible now',
        err.message,
      );
    }
    if (err instanceof UnreadablePayloadError) return problemPage(c, 410, 'Gone', err.message);
    if (err instanceof HTTPException && err.status === 400) return problemPage(c, 400, 'Check the form', err.message);
    deps.logger.error({ err, method: c.req.method, path: c.req.path }, 'console: unhandled error');
    return problemPage(c, 500, 'Something went wrong', 'The error was logged.');
  };
}
