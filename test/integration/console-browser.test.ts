/**
 * The console in a real browser (Debian's Chromium, driven by playwright-core) against the real
 * api, a real worker, Temporal and Neo4j: sign-in and the session (redirects, the cookie, CSRF,
 * the CSP, accessibility and the keyboard); ops finding a customer, the identity graph drawn, a
 * recovery with its Temporal link, a fraud review resolved; a customer on their own page removing
 * their default card; and the codec server decoding the Temporal UI's payloads for a browser
 * signed in to the console as ops. Every page is watched for console errors and CSP violations,
 * checked with axe-core and for tokens or unmasked identifiers; screenshots go to
 * test-results/console/.
 */
import { randomUUID } from 'node:crypto';
import type { Locator, Page, Response as PageResponse } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_CSP } from '../../api/console/app';
import { maskEmail, maskPhone } from '../../api/console/mask';
import { SESSION_COOKIE, SIGN_IN_COOKIE } from '../../api/console/session';
import { signToken, startHarness, type Harness } from '../support/api';
import {
  expectAccessible,
  expectNothingLeaked,
  landing,
  screenshot,
  signIn,
  startConsoleBrowser,
  type BrowserSession,
  type ConsoleBrowser,
} from '../support/browser';
import { uniqueUsPhone } from '../support/console';
import { onboardingBody, onboardThroughApi } from '../support/builders';
import { cardInput, uniqueEmail } from '../support/graph';
import { send } from '../support/http';
import { paymentId } from '../support/recovery';
import { until } from '../support/wait';
import type { FraudOutcomeStatus } from '../../temporal/fraud';
import { cancelRecoveryUpdate, recoveryWorkflowId, type RecoveryStatus } from '../../temporal/recovery';

let h: Harness;
let b: ConsoleBrowser;
beforeAll(async () => {
  h = await startHarness();
  b = await startConsoleBrowser(h.app);
});
afterAll(async () => {
  await b?.close();
  await h?.close();
});

/** Each test's browser contexts, closed after it (a failed test leaves no browser behind). */
const sessions: BrowserSession[] = [];
async function open(): Promise<BrowserSession> {
  const s = await b.open();
  sessions.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.close()));
});

interface Person {
  email: string;
  phone: string;
  fingerprint: string;
  token: string;
}

const person = (): Person => ({
  email: uniqueEmail('console'),
  phone: uniqueUsPhone(),
  fingerprint: `fp-${randomUUID()}`,
  token: `tok_${randomUUID()}`,
});

/** A customer onboarded through the api (and its workflow finished, so its history is complete). */
async function onboard(p: Person): Promise<{ customerId: string; workflowId: string }> {
  const res = await onboardThroughApi<{ customer_id: string; workflow_id: string }>(
    h.app,
    await h.token('onboarding:write'),
    onboardingBody({
      payment_method: cardInput({ token: p.token, expiry_year: 2031 }),
      device: { fingerprint: p.fingerprint, ip: '198.51.100.7', user_agent: 'Safari' },
      digital_identifiers: [
        { type: 'email', value: p.email, is_verified: true },
        { type: 'phone_number', value: p.phone, is_verified: false },
      ],
    }),
  );
  expect([200, 201]).toContain(res.status);
  const body = res.json;
  await h.client.workflow.getHandle(body.workflow_id).result();
  return { customerId: body.customer_id, workflowId: body.workflow_id };
}

const pathOf = (url: string) => new URL(url).pathname;

/** The page is at `path` (and if not, says what it shows instead). */
async function expectAt(page: Page, path: string): Promise<void> {
  if (pathOf(page.url()) === path) return;
  const shown = await page
    .locator('main')
    .textContent({ timeout: 1000 })
    .catch(() => page.content());
  expect(pathOf(page.url()), `at ${page.url()}, showing: ${shown}`).toBe(path);
}
const sessionCookie = async (s: BrowserSession) =>
  (await s.context.cookies()).find((c) => c.name === `__Host-${SESSION_COOKIE}`);

describe('signing in to the console', () => {
  it('sends a page request without a session to the sign-in page, then on to where it was going', async () => {
    const s = await open();
    for (const path of ['/console/search', '/console/me', '/console']) {
      const res = await s.page.goto(`${b.baseUrl}${path}`);
      expect(res?.status()).toBe(200);
      expect(res?.request().redirectedFrom()?.url()).toBe(`${b.baseUrl}${path}`);
      const at = new URL(s.page.url());
      expect(at.pathname).toBe('/console/sign-in');
      expect(at.searchParams.get('next')).toBe(path);
      await expect(s.page.locator('h1').textContent()).resolves.toBe('Sign in');
    }
    // A customer asked for /console/me: after signing in, that is where they are.
    const ada = await onboard(person());
    await s.page.goto(`${b.baseUrl}/console/me`);
    await s.page.locator('#token').fill(await h.token('self', ada.customerId));
    await landing(s.page, () => s.page.locator('form.sign-in button[type="submit"]').click());
    await expectAt(s.page, '/console/me');
    expect(await sessionCookie(s)).toBeDefined();
    s.watch.expectNoProblems();
  });

  it('signs an ops token in to the search page and a customer’s own token in to their page', async () => {
    const ops = await open();
    await signIn(ops.page, b.baseUrl, await h.token('ops', 'ops-ada'));
    await expectAt(ops.page, '/console/search');

    const ada = await onboard(person());
    const customer = await open();
    await signIn(customer.page, b.baseUrl, await h.token('self', ada.customerId));
    await expectAt(customer.page, '/console/me');
    for (const s of [ops, customer]) {
      expect(await sessionCookie(s)).toBeDefined();
      // The sign-in form's double-submit cookie is spent.
      expect((await s.context.cookies()).map((c) => c.name)).not.toContain(`__Host-${SIGN_IN_COOKIE}`);
      s.watch.expectNoProblems();
    }
  });

  it('keeps the session in an HttpOnly, Secure, SameSite=Strict host cookie; pages send a strict CSP', async () => {
    const s = await open();
    const form = await s.page.goto(`${b.baseUrl}/console/sign-in`);
    const headers = form?.headers() ?? {};
    expect(headers['content-security-policy']).toBe(CONSOLE_CSP);
    const csp = new Map(
      CONSOLE_CSP.split(';').map((d) => {
        const [name = '', ...values] = d.trim().split(/\s+/);
        return [name, values] as const;
      }),
    );
    expect(csp.get('default-src')).toEqual(["'none'"]);
    expect(csp.get('script-src')).toEqual(["'self'"]);
    expect(csp.get('style-src')).toEqual(["'self'"]);
    expect(csp.get('frame-ancestors')).toEqual(["'none'"]);
    expect(csp.get('form-action')).toEqual(["'self'"]);
    expect(csp.get('base-uri')).toEqual(["'none'"]);
    expect(CONSOLE_CSP).not.toMatch(/unsafe-|\*|https?:/);
    expect(headers['x-frame-options']).toBe('DENY');
    expect(headers['referrer-policy']).toBe('no-referrer');

    const token = await h.token('ops', 'ops-cookie');
    const before = Math.floor(Date.now() / 1000);
    await signIn(s.page, b.baseUrl, token);
    const cookie = await sessionCookie(s);
    expect(cookie).toMatchObject({
      value: token,
      domain: 'localhost',
      path: '/',
      httpOnly: true,
      secure: true,
      sameSite: 'Strict',
    });
    // No longer than the token lives (10 minutes).
    expect(cookie?.expires).toBeGreaterThan(before);
    expect(cookie?.expires).toBeLessThanOrEqual(before + 600 + 5);
    // No script reads it.
    expect(await s.page.evaluate('document.cookie')).not.toContain(SESSION_COOKIE);
    s.watch.expectNoProblems();
  });

  it('says why a garbage, expired or console-less token is refused, and starts no session', async () => {
    const s = await open();
    const refusals: [string, number, RegExp][] = [
      ['not-a-token', 401, /Unauthenticated: the token is not valid\./],
      [await signToken(h.graph.config.jwtSecret, 'ops', 'ops-late', -60), 401, /the token has expired/],
      [await h.token('context:read'), 403, /This token opens nothing in the console/],
    ];
    for (const [token, status, message] of refusals) {
      const res = await signIn(s.page, b.baseUrl, token);
      expect(res.status()).toBe(status);
      await expectAt(s.page, '/console/sign-in');
      await expect(s.page.getByRole('alert').textContent()).resolves.toMatch(message);
      // The form is there to try again.
      await expect(s.page.locator('#token').isVisible()).resolves.toBe(true);
      expect(await sessionCookie(s)).toBeUndefined();
    }
    await screenshot(s.page, 'sign-in-refused');
    await expectNothingLeaked(s.page, s.watch);
    s.watch.expectNoProblems();
  });

  it('refuses a sign-in form whose CSRF value was forged, and a sign-out form whose CSRF token was', async () => {
    const s = await open();
    // The sign-in form: its value must equal the one in the pre-session cookie.
    await s.page.goto(`${b.baseUrl}/console/sign-in`);
    await s.page.locator('#token').fill(await h.token('ops', 'ops-forged'));
    await s.page.evaluate("document.querySelector('form.sign-in input[name=_csrf]').value = 'forged'");
    const forgedSignIn = await landing(s.page, () => s.page.locator('form.sign-in button[type="submit"]').click());
    expect(forgedSignIn.status()).toBe(403);
    await expect(s.page.getByRole('alert').textContent()).resolves.toMatch(/did not come from this console/);
    expect(await sessionCookie(s)).toBeUndefined();

    // Signed in: the sign-out form of every page carries the session's CSRF token.
    await signIn(s.page, b.baseUrl, await h.token('ops', 'ops-forged'));
    const home = s.page.url();
    const signOut = s.page.locator('form.sign-out');
    await expect(signOut.locator('input[name=_csrf]').getAttribute('value')).resolves.toMatch(/^[\w-]{20,}$/);
    await s.page.evaluate("document.querySelector('form.sign-out input[name=_csrf]').value = 'forged'");
    const forged = await landing(s.page, () => signOut.locator('button[type="submit"]').click());
    expect(forged.status()).toBe(403);
    await expect(s.page.getByRole('alert').textContent()).resolves.toMatch(/CSRF token is missing or not this session/);
    // Nothing happened: the session goes on.
    expect(await sessionCookie(s)).toBeDefined();
    const again = await s.page.goto(home);
    expect(pathOf(s.page.url())).toBe(pathOf(home));
    expect(again?.request().redirectedFrom()).toBeNull();

    // The same form untouched signs out, and the pages are closed again.
    const out = await landing(s.page, () => s.page.locator('form.sign-out button[type="submit"]').click());
    expect(out.status()).toBe(200);
    await expectAt(s.page, '/console/sign-in');
    expect(await sessionCookie(s)).toBeUndefined();
    await s.page.goto(home);
    await expectAt(s.page, '/console/sign-in');
    s.watch.expectNoProblems();
  });

  it('makes the sign-in page pass axe and work with the keyboard alone', async () => {
    const s = await open();
    await s.page.goto(`${b.baseUrl}/console/sign-in`);
    await expectAccessible(s.page, 'the sign-in page');
    await screenshot(s.page, 'sign-in');

    // Tab from the top: the skip link first, then on to the token.
    const focused = () =>
      s.page.evaluate<string>("document.activeElement?.id || document.activeElement?.textContent?.trim() || ''");
    const order: string[] = [];
    for (let i = 0; i < 6 && order.at(-1) !== 'token'; i++) {
      await s.page.keyboard.press('Tab');
      order.push(await focused());
    }
    expect(order[0]).toBe('Skip to the content');
    expect(order.at(-1)).toBe('token');
    await s.page.keyboard.type(await h.token('ops', 'ops-keyboard'));
    await s.page.keyboard.press('Tab');
    expect(await focused()).toBe('Sign in');
    await landing(s.page, () => s.page.keyboard.press('Enter'));
    await expectAt(s.page, '/console/search');
    expect(await sessionCookie(s)).toBeDefined();
    s.watch.expectNoProblems();
  });

  it('enforces the CSP in the browser: an inline script put into a page does not run, and is reported', async () => {
    const s = await open();
    await s.page.goto(`${b.baseUrl}/console/sign-in`);
    await s.page.evaluate(
      "const script = document.createElement('script'); script.textContent = 'window.__ran = true'; " +
        'document.head.appendChild(script);',
    );
    expect(await s.page.evaluate('window.__ran === true')).toBe(false);
    await expect.poll(() => s.watch.problems.join('\n')).toMatch(/CSP violation: script-src/);
  });

  it('draws the API reference from this origin under its CSP: nothing blocked, nothing fetched elsewhere', async () => {
    const s = await open();
    const elsewhere: string[] = [];
    s.page.on('request', (r) => {
      if (!r.url().startsWith(b.baseUrl) && !r.url().startsWith('data:')) elsewhere.push(r.url());
    });
    const res = await s.page.goto(`${b.baseUrl}/docs`);
    expect(res?.headers()['content-security-policy']).toMatch(/script-src 'self';/);
    await expect.poll(() => s.page.locator('.swagger-ui .info .title').textContent()).toMatch(/Persona API/);
    await expect.poll(() => s.page.locator('.opblock').count()).toBeGreaterThan(10);
    expect(elsewhere).toEqual([]);
    s.watch.expectNoProblems();
  });

  it('has checks that fail on a page breaking them: a field without its label, a token in the page', async () => {
    const s = await open();
    await s.page.goto(`${b.baseUrl}/console/sign-in`);
    await s.page.evaluate("document.querySelector('label[for=token]').remove()");
    await expect(expectAccessible(s.page)).rejects.toThrow(/critical: label/);
    const token = await h.token('ops', 'ops-leak');
    await s.page.evaluate(`document.querySelector('main').append(${JSON.stringify(token)})`);
    await expect(expectNothingLeaked(s.page, s.watch)).rejects.toThrow(/a JWT/);
    await expect(expectNothingLeaked(s.page, s.watch, ['Your access token'])).rejects.toThrow(/Your access token/);
  });
});

/** A JSON call to the REST api. */
const api = (method: string, path: string, token: string, body?: unknown) =>
  send(h.app, method, path, { token, body, empty: null });

/** What no page of a customer may hold: their identifiers unmasked, their card token. */
const secretsOf = (p: Person) => [p.email, p.phone, p.phone.slice(1), p.fingerprint, p.token];

/** Reloads `page` until `ready` holds (Temporal's visibility lists a new workflow a moment later). */
async function reloadUntil(page: Page, ready: () => Promise<boolean>): Promise<void> {
  await until(async () => {
    if (await ready()) return true;
    await page.reload();
    return false;
  });
}

/** Presses Tab until `target` has the focus (at most `max` times): it is reachable with the keyboard. */
async function tabTo(page: Page, target: Locator, max = 60): Promise<void> {
  for (let i = 0; i < max; i++) {
    if (await target.evaluate((el) => el === el.ownerDocument.activeElement)) return;
    await page.keyboard.press('Tab');
  }
  throw new Error(`${String(target)} was not reached with ${max} presses of Tab`);
}

/** Starts a console action with its button, then confirms it: the outcome page's answer. */
async function confirmThenAct(page: Page, button: Locator): Promise<PageResponse> {
  const confirmation = await landing(page, () => button.click());
  expect(confirmation.status()).toBe(200);
  await expectAccessible(page, 'a confirmation page');
  return landing(page, () => page.getByRole('button', { name: 'Confirm' }).click());
}

describe('ops in the console', () => {
  it('finds a customer by email; sees the graph drawn and the recovery in dunning with its Temporal link', async () => {
    const p = { ...person(), token: `tok_decline_insufficient_funds_${randomUUID().slice(0, 8)}` };
    const c = await onboard(p);
    const wallet = await api('GET', `/api/v1/customers/${c.customerId}/payment-methods`, await h.token('ops'));
    const [card] = wallet.json.data as { id: string }[];
    const payment = paymentId();
    const reported = await api('POST', '/api/v1/payment-failures', await h.token('payments:report'), {
      payment_id: payment,
      customer_id: c.customerId,
      payment_method_id: card?.id,
      amount: 1250,
      currency: 'EUR',
      decline_code: 'insufficient_funds',
    });
    expect(reported.status).toBe(202);
    const recovery = h.client.workflow.getHandle(recoveryWorkflowId(payment));
    await until(async () => (await recovery.query<RecoveryStatus>('recoveryStatus')).state === 'dunning');

    const s = await open();
    await signIn(s.page, b.baseUrl, await h.token('ops', 'ops-browser'));
    await expectAt(s.page, '/console/search');
    await expectAccessible(s.page, 'the search page');
    await screenshot(s.page, 'search');
    // As typed by a person: another case and stray spaces, normalised like onboarding.
    await s.page.locator('#search-by').selectOption('email');
    await s.page.locator('#search-q').fill(`  ${p.email.toUpperCase()} `);
    const found = await landing(s.page, () => s.page.getByRole('button', { name: 'Find' }).click());
    expect(found.status()).toBe(200);
    await expectAt(s.page, `/console/customers/${c.customerId}`);

    // The identity graph, drawn: as many nodes as the page's data holds (the customer, a card, a
    // device, an email, a phone at least).
    const graph = s.page.locator('#identity-graph[data-ready="true"]');
    await graph.waitFor({ state: 'attached' });
    const elements = JSON.parse((await s.page.locator('#identity-graph-data').textContent()) ?? '[]') as {
      data: { source?: string };
    }[];
    const nodes = elements.filter((e) => e.data.source === undefined).length;
    expect(nodes).toBeGreaterThanOrEqual(5);
    expect(Number(await graph.getAttribute('data-nodes'))).toBe(nodes);
    await expect(s.page.locator('#identity-graph canvas').count()).resolves.toBeGreaterThan(0);
    // Identifiers masked.
    const shown = await s.page.locator('main').innerText();
    expect(shown).toContain(maskEmail(p.email));
    expect(shown).toContain(maskPhone(p.phone));

    // The recovery, in dunning, with a link to its history in the Temporal UI.
    const row = s.page.locator(`#workflows tr[data-workflow-id="${recoveryWorkflowId(payment)}"]`);
    await reloadUntil(s.page, async () => (await row.count()) > 0 && /dunning/i.test(await row.innerText()));
    const { runId } = await recovery.describe();
    const link = row.locator('a.temporal-link');
    await expect(link.getAttribute('href')).resolves.toBe(
      `${h.deps.console.temporalUiUrl.replace(/\/+$/, '')}/namespaces/${h.deps.console.namespace}/workflows/` +
        `${recoveryWorkflowId(payment)}/${runId}/history`,
    );
    await expectAccessible(s.page, 'the customer page');
    await screenshot(s.page, 'customer-page');
    await expectNothingLeaked(s.page, s.watch, secretsOf(p));
    s.watch.expectNoProblems();

    // The link opens that history in the Temporal UI.
    const ui = await s.context.newPage();
    await ui.goto((await link.getAttribute('href')) ?? '');
    await expect
      .poll(() => ui.evaluate<string>('document.body.innerText'), { timeout: 20_000 })
      .toContain(recoveryWorkflowId(payment));
    // Its dunning would otherwise wait for days on the shared dev server.
    await recovery.executeUpdate(cancelRecoveryUpdate, { args: [{ reason: 'test over' }] });
  });

  it('resolves a fraud review from the customer page and sees the customer active again', async () => {
    const p = person();
    const c = await onboard(p);
    const chimera = await h.token('fraud:report');
    const outcomeId = `ato-${randomUUID()}`;
    const reported = await api('POST', '/api/v1/fraud-outcomes', chimera, {
      outcome_id: outcomeId,
      customer_id: c.customerId,
      outcome: 'account_takeover',
    });
    expect(reported.status).toBe(202);
    const reviewState = async () =>
      ((await api('GET', `/api/v1/fraud-outcomes/${outcomeId}`, chimera)).json as unknown as FraudOutcomeStatus).state;
    await until(async () => (await reviewState()) === 'awaiting_review');

    const s = await open();
    await signIn(s.page, b.baseUrl, await h.token('ops', 'ops-browser'));
    await s.page.locator('#search-by').selectOption('fraud_outcome');
    await s.page.locator('#search-q').fill(outcomeId);
    await landing(s.page, () => s.page.getByRole('button', { name: 'Find' }).click());
    await expectAt(s.page, `/console/customers/${c.customerId}`);
    const status = s.page.locator('#profile dd span').first();
    await expect(status.innerText()).resolves.toBe('suspended');

    const reinstate = s.page.getByRole('button', { name: 'Reinstate the customer' });
    await reloadUntil(s.page, async () => (await reinstate.count()) > 0);
    await s.page.getByLabel('Note (optional)').first().fill('the customer called from the verified phone');
    // With the keyboard alone: from the note to its button, Enter; on the confirmation, to Confirm, Enter.
    await tabTo(s.page, reinstate);
    await landing(s.page, () => s.page.keyboard.press('Enter'));
    await expectAccessible(s.page, 'a confirmation page');
    await tabTo(s.page, s.page.getByRole('button', { name: 'Confirm' }));
    const outcome = await landing(s.page, () => s.page.keyboard.press('Enter'));
    expect(outcome.status()).toBe(200);
    await expect(s.page.getByRole('status').innerText()).resolves.toContain(
      `Fraud outcome ${outcomeId}: the customer is reinstated (active again).`,
    );
    await screenshot(s.page, 'fraud-review-resolved');
    await landing(s.page, () => s.page.getByRole('link', { name: 'Back' }).click());
    await expectAt(s.page, `/console/customers/${c.customerId}`);
    await expect(status.innerText()).resolves.toBe('active');
    expect(await reviewState()).toBe('reinstated');
    await expectNothingLeaked(s.page, s.watch, secretsOf(p));
    s.watch.expectNoProblems();
  });
});

describe('a customer in the console', () => {
  it('sees only their own page, removes their default card, and sees the default move', async () => {
    const p = person();
    const c = await onboard(p);
    const other = await onboard(person());
    const added = await api(
      'POST',
      `/api/v1/customers/${c.customerId}/payment-methods`,
      await h.token('customers:write'),
      {
        type: 'card',
        token: `tok_${randomUUID()}`,
        brand: 'mastercard',
        last_four: '4444',
        expiry_month: 6,
        expiry_year: 2032,
      },
    );
    expect(added.status).toBe(201);

    const s = await open();
    await signIn(s.page, b.baseUrl, await h.token('self', c.customerId));
    await expectAt(s.page, '/console/me');
    // Nothing else of the console: not another customer's page, not the search.
    for (const path of [
      `/console/customers/${other.customerId}`,
      `/console/customers/${c.customerId}`,
      '/console/search',
    ]) {
      const res = await s.page.goto(`${b.baseUrl}${path}`);
      expect(res?.status(), path).toBe(403);
    }
    await s.page.goto(`${b.baseUrl}/console/me`);
    await expect(s.page.locator('nav[aria-label="Console"]').innerText()).resolves.not.toContain('Find a customer');
    await expectAccessible(s.page, 'the customer’s own page');
    await screenshot(s.page, 'me');

    const wallet = s.page.locator('#wallet');
    const rowOf = (words: string) => wallet.locator('tr', { hasText: words });
    await expect(rowOf('Visa ending 4242').locator('td').nth(3).innerText()).resolves.toBe('Default');
    const outcome = await confirmThenAct(s.page, wallet.getByRole('button', { name: 'Remove Visa ending 4242' }));
    expect(outcome.status()).toBe(200);
    await expect(s.page.getByRole('status').innerText()).resolves.toContain(
      'Your default card is now Mastercard ending 4444.',
    );
    await landing(s.page, () => s.page.getByRole('link', { name: 'Back' }).click());
    await expectAt(s.page, '/console/me');
    await expect(rowOf('Visa ending 4242').count()).resolves.toBe(0);
    await expect(rowOf('Mastercard ending 4444').locator('td').nth(3).innerText()).resolves.toBe('Default');
    await screenshot(s.page, 'me-after-removing-a-card');
    await expectNothingLeaked(s.page, s.watch, secretsOf(p));
    s.watch.expectNoProblems();
  });
});

describe('the Temporal UI, through the codec server, with the console’s session', () => {
  /** A page on the Temporal UI's origin (the only one the codec's CORS answers) in this browser context. */
  async function uiPage(s: BrowserSession): Promise<Page> {
    const origin = h.deps.payloads.corsOrigin;
    expect(origin, 'the codec answers the UI at a localhost origin').toMatch(/^http:\/\/localhost:\d+$/);
    const ui = await s.context.newPage();
    const res = await ui.goto(origin);
    expect(res?.ok(), `the Temporal UI answers at ${origin}`).toBe(true);
    return ui;
  }

  /** The payloads of a workflow's start, as Temporal stores them (no codec on this read), in the codec's JSON. */
  async function storedInput(workflowId: string): Promise<{ payloads: { metadata: object; data: string }[] }> {
    const res = await h.client.connection.workflowService.getWorkflowExecutionHistory({
      namespace: h.client.options.namespace,
      execution: { workflowId },
    });
    const payloads = res.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads ?? [];
    expect(payloads.length).toBe(1);
    return {
      payloads: payloads.map((p) => ({
        metadata: Object.fromEntries(
          Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
        ),
        data: Buffer.from(p.data ?? []).toString('base64'),
      })),
    };
  }

  /** What the UI's codec call gets: `fetch` from the page, with the browser's cookies (`includeCredentials`). */
  function decodeFrom(page: Page, body: object): Promise<{ status: number; text: string }> {
    return page.evaluate(
      async ({ url, body }) => {
        const res = await fetch(url, {
          method: 'POST',
          credentials: 'include',
          headers: { 'content-type': 'application/json', 'x-namespace': 'default' },
          body,
        });
        return { status: res.status, text: await res.text() };
      },
      { url: `${b.baseUrl}/codec/decode`, body: JSON.stringify(body) },
    );
  }

  /** What the page shows (its rendered text). */
  const shownText = (page: Page) => page.evaluate<string>('document.body.innerText');

  const plainText = (answer: string) =>
    (JSON.parse(answer) as { payloads: { data: string }[] }).payloads
      .map((p) => Buffer.from(p.data, 'base64').toString('utf8'))
      .join('\n');

  it('answers the UI’s credentialed fetch with plain payloads for an ops session only', async () => {
    const ada = person();
    const a = await onboard(ada);
    const stored = await storedInput(a.workflowId);
    expect(JSON.stringify(stored)).not.toContain(ada.email);
    expect(plainText(JSON.stringify(stored))).not.toContain(ada.email);

    const ops = await open();
    await signIn(ops.page, b.baseUrl, await h.token('ops', 'ops-temporal-ui'));
    const asOps = await decodeFrom(await uiPage(ops), stored);
    expect(asOps.status).toBe(200);
    expect(plainText(asOps.text)).toContain(ada.email);
    expect(plainText(asOps.text)).toContain(ada.fingerprint);

    const customer = await open();
    await signIn(customer.page, b.baseUrl, await h.token('self', a.customerId));
    await expectAt(customer.page, '/console/me');
    const asCustomer = await decodeFrom(await uiPage(customer), stored);
    expect(asCustomer.status).toBe(403);
    expect(asCustomer.text).not.toContain(ada.email);

    const nobody = await open();
    const asNobody = await decodeFrom(await uiPage(nobody), stored);
    expect(asNobody.status).toBe(401);
    expect(asNobody.text).not.toContain(ada.email);

    // Another origin on the same site (the cookie goes along) is not let read the answer.
    const elsewhere = await ops.context.newPage();
    await elsewhere.route('http://localhost:9/', (route) =>
      route.fulfill({ status: 200, contentType: 'text/html', body: '<!DOCTYPE html><title>elsewhere</title>' }),
    );
    await elsewhere.goto('http://localhost:9/');
    await expect(decodeFrom(elsewhere, stored)).rejects.toThrow(/Failed to fetch/);
    for (const s of [ops, customer, nobody]) s.watch.expectNoProblems();
  });

  it('shows a history decoded in the Temporal UI to a browser signed in as ops, ciphertext to a customer', async () => {
    const ada = person();
    const a = await onboard(ada);
    const { runId } = await h.client.workflow.getHandle(a.workflowId).describe();
    /**
     * The UI of the dev server (`temporal server start-dev`) cannot be told to include credentials;
     * a user tells it in its codec settings (this browser's endpoint, "include cross-origin
     * credentials"), which it keeps in local storage.
     */
    const historyIn = async (s: BrowserSession): Promise<Page> => {
      const ui = await uiPage(s);
      await ui.evaluate(
        `localStorage.setItem('endpoint', ${JSON.stringify(JSON.stringify(`${b.baseUrl}/codec`))});` +
          "localStorage.setItem('includeCredentials', 'true');" +
          "localStorage.setItem('overrideRemoteCodecConfiguration', 'true');",
      );
      const codec = ui.waitForResponse((r) => r.url().startsWith(`${b.baseUrl}/codec/decode`));
      await ui.goto(`${h.deps.payloads.corsOrigin}/namespaces/default/workflows/${a.workflowId}/${runId}/history`);
      await codec;
      return ui;
    };

    const ops = await open();
    await signIn(ops.page, b.baseUrl, await h.token('ops', 'ops-temporal-ui'));
    const decoded = await historyIn(ops);
    // The workflow's result, decoded: the customer's id in plain JSON.
    await expect.poll(() => decoded.content(), { timeout: 20_000 }).toContain(`"${a.customerId}"`);
    expect(await shownText(decoded)).not.toContain('Codec Server could not connect');
    await screenshot(decoded, 'temporal-ui-decoded-for-ops');

    const customer = await open();
    await signIn(customer.page, b.baseUrl, await h.token('self', a.customerId));
    const ciphertext = await historyIn(customer);
    await expect.poll(() => shownText(ciphertext), { timeout: 20_000 }).toContain('Codec Server could not connect');
    expect(await ciphertext.content()).not.toContain(a.customerId);
    await screenshot(ciphertext, 'temporal-ui-ciphertext-for-a-customer');
  });
});
