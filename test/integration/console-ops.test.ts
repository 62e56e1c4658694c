/**
 * The ops side of the console end to end, used as a browser uses it (sign-in form, session cookie,
 * CSRF token from the page, confirm then act), against the real api, worker, Temporal and Neo4j:
 * finding a customer by every key, the customer page (masked identifiers, no token, the shared
 * device counted without its other customer), a fraud review and a recovery's cancellation decided
 * through the console, an expiry scan started there, and what a read-only session does not get.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maskEmail, maskOpaque, maskPhone } from '../../api/console/mask';
import type { FraudOutcomeStatus } from '../../temporal/fraud';
import { cancelRecoveryUpdate, type RecoveryStatus } from '../../temporal/recovery';
import { startHarness, type Harness } from '../support/api';
import { onboardThroughApi } from '../support/builders';
import { csrfOf, decodeHtml, formFields, getPage, postForm, signIn, uniqueUsPhone } from '../support/console';
import { cardInput, uniqueEmail } from '../support/graph';
import { send } from '../support/http';
import { paymentId } from '../support/recovery';
import { until } from '../support/wait';

let h: Harness;
let ops: string;
let opsCookie: string;
let readerCookie: string;

beforeAll(async () => {
  h = await startHarness();
  ops = await h.token('ops');
  opsCookie = await signIn(h.app, ops);
  readerCookie = await signIn(h.app, await h.token('customers:read'));
});
afterAll(() => h?.close());

const api = (method: string, path: string, token: string, body?: unknown) =>
  send(h.app, method, path, { token, body, empty: null });

interface Onboarded {
  customerId: string;
  email: string;
  phone: string;
  fingerprint: string;
  token: string;
  /** A street of this customer alone (a shared address would make every test customer a possible match). */
  street: string;
  key: string;
}

/** Onboards a customer through the REST api (a verified email and phone, a card, a device, an address). */
async function onboard(overrides: Partial<Omit<Onboarded, 'customerId' | 'key'>> = {}): Promise<Onboarded> {
  const o = {
    street: `${randomInt(1, 1000)} ${randomUUID().slice(0, 8)} Quay`,
    email: uniqueEmail('console'),
    phone: uniqueUsPhone(),
    fingerprint: `fp-${randomUUID()}`,
    token: `tok_visa_${randomUUID()}`,
    ...overrides,
  };
  const key = randomUUID();
  const res = await onboardThroughApi(
    h.app,
    await h.token('onboarding:write identity:verify customers:write'),
    {
      customer: { segment: 'Subscriber', ltv: '42.5' },
      payment_method: cardInput({ token: o.token, expiry_year: 2033 }),
      device: { fingerprint: o.fingerprint, ip: '198.51.100.7', user_agent: 'Firefox' },
      address: { street1: o.street, city: 'Dublin', zip_code: 'D02 X285', country: 'IE', type: 'billing' },
      digital_identifiers: [
        { type: 'email', value: o.email, is_verified: true },
        { type: 'phone_number', value: o.phone, is_verified: true },
      ],
    },
    { key },
  );
  const json = res.json;
  expect(res.status, JSON.stringify(json)).toBe(200);
  return { ...o, customerId: json.customer_id as string, key };
}

async function page(path: string, cookie = opsCookie) {
  const res = await getPage(h.app, path, cookie);
  return { status: res.status, location: res.headers.get('location'), html: await res.text() };
}

/** A search as the form sends it (POST, never the address: an email there would be logged). */
async function searchFor(by: string, q: string, cookie = opsCookie) {
  const form = await page('/console/search', cookie);
  const res = await postForm(h.app, '/console/search', cookie, { _csrf: csrfOf(form.html), by, q });
  return { status: res.status, location: res.headers.get('location'), html: await res.text() };
}

/** One section of a page, by its id (sections do not nest). */
function section(html: string, id: string): string {
  const start = html.indexOf(`<section id="${id}"`);
  if (start < 0) throw new Error(`no section #${id}`);
  return html.slice(start, html.indexOf('</section>', start));
}

/** The customer page once Temporal's visibility lists what `ready` looks for. */
async function customerPageWhen(customerId: string, ready: (html: string) => boolean, cookie = opsCookie) {
  let html = '';
  await until(async () => {
    const p = await page(`/console/customers/${customerId}`, cookie);
    html = p.html;
    return p.status === 200 && ready(html);
  });
  return html;
}

/** Posts a console action, then confirms it on the confirmation page: both pages. */
async function confirmThenAct(action: string, fields: Record<string, string>) {
  const path = `/console/actions/${action}`;
  const first = await postForm(h.app, path, opsCookie, fields);
  const confirm = { status: first.status, html: await first.text() };
  if (confirm.status !== 200) return { confirm, outcome: null };
  const second = await postForm(h.app, path, opsCookie, formFields(confirm.html, path));
  return { confirm, outcome: { status: second.status, html: await second.text() } };
}

async function walletOf(customerId: string): Promise<string[]> {
  const wallet = await api('GET', `/api/v1/customers/${customerId}/payment-methods`, ops);
  return (wallet.json.data as { id: string }[]).map((pm) => pm.id);
}

/** A recovery of the customer's only card that soft-declines: it goes on to dunning. */
async function recoveryInDunning(c: Onboarded) {
  const [card] = await walletOf(c.customerId);
  const payment = paymentId();
  const reported = await api('POST', '/api/v1/payment-failures', await h.token('payments:report'), {
    payment_id: payment,
    customer_id: c.customerId,
    payment_method_id: card,
    amount: 1250,
    currency: 'EUR',
    decline_code: 'insufficient_funds',
  });
  expect(reported.status).toBe(202);
  await until(async () => (await recoveryOf(payment)).state === 'dunning');
  return payment;
}

async function recoveryOf(payment: string): Promise<RecoveryStatus> {
  return (await api('GET', `/api/v1/payment-recoveries/${payment}`, ops)).json as unknown as RecoveryStatus;
}

describe('finding a customer', () => {
  it('finds by email (normalised), phone, fingerprint and id, each an exact match that leads to the page', async () => {
    const c = await onboard();
    const at = `/console/customers/${c.customerId}`;
    const national = c.phone.replace(/^\+1(\d{3})(\d{3})(\d{4})$/, '+1 ($1) $2-$3');
    for (const [by, q] of [
      ['email', `  ${c.email.toUpperCase()} `],
      ['phone', national],
      ['fingerprint', c.fingerprint],
      ['id', c.customerId],
    ] as const) {
      const res = await searchFor(by, q);
      expect([by, res.status, res.location]).toEqual([by, 303, at]);
    }
    // Exact only: a part of the email finds nothing.
    const part = await searchFor('email', c.email.slice(1));
    expect(part.status).toBe(200);
    expect(part.html).toContain('No customer has the email address');
    expect(part.html).not.toContain(c.email.slice(1));
  });

  it('names the field of a bad search, and says when nothing is found', async () => {
    const bad = await searchFor('email', 'not-an-email');
    expect(bad.status).toBe(400);
    expect(bad.html).toContain('The value (q): not an email address');
    const kind = await searchFor('shoe-size', '42');
    expect(kind.status).toBe(400);
    expect(kind.html).toContain('by: must be one of');
    const phone = await searchFor('phone', '12');
    expect([phone.status, phone.html.includes('(q): not a phone number')]).toEqual([400, true]);
    const none = await searchFor('id', randomUUID());
    expect([none.status, none.html.includes('No customer has this id.')]).toEqual([200, true]);
    const form = await page('/console/search');
    expect(form.status).toBe(200);
    expect(form.html).toMatch(/<label for="search-by">[^<]+<\/label>\s*<select id="search-by" name="by">/);
    expect(form.html).toMatch(/<label for="search-q">/);
  });

  it('takes no search in the address: GET with a query is refused, and a sign-in never carries it', async () => {
    const c = await onboard();
    const byAddress = await page(`/console/search?by=email&q=${encodeURIComponent(c.email)}`);
    expect(byAddress.status).toBe(400);
    expect(byAddress.html).toContain('search with the form');
    expect(byAddress.html).not.toContain(c.email);
    // Signed out: the way back to the page, without the query.
    const signedOut = await h.app.request(`/console/search?by=email&q=${encodeURIComponent(c.email)}`, {
      redirect: 'manual',
    });
    expect(signedOut.status).toBe(303);
    expect(signedOut.headers.get('location')).toBe(`/console/sign-in?next=${encodeURIComponent('/console/search')}`);
  });

  it('lists the customers of a shared device, without their identifiers', async () => {
    const a = await onboard();
    const b = await onboard({ fingerprint: a.fingerprint });
    const res = await searchFor('fingerprint', a.fingerprint);
    expect(res.status).toBe(200);
    expect(res.html).toContain(`2 customers use device ${maskOpaque(a.fingerprint)}`);
    for (const c of [a, b]) {
      expect(res.html).toContain(`href="/console/customers/${c.customerId}"`);
      expect(res.html).not.toContain(c.email);
    }
    expect(res.html).not.toContain(a.fingerprint);
  });
});

describe('the customer page', () => {
  it('shows every section, masks every identifier, never a token, and counts the device’s other customer', async () => {
    const a = await onboard();
    const b = await onboard({ fingerprint: a.fingerprint });
    const html = await customerPageWhen(a.customerId, (p) => p.includes(`onboarding-${a.key}`));
    for (const id of ['profile', 'graph', 'wallet', 'history', 'possible-matches', 'workflows', 'contests'])
      expect(html, id).toContain(`<section id="${id}"`);
    // Identifiers masked; no whole email, phone, fingerprint or token anywhere in the page.
    expect(html).toContain(maskEmail(a.email));
    expect(html).toContain(maskPhone(a.phone));
    expect(html).toContain(maskOpaque(a.fingerprint));
    for (const secret of [a.email, a.phone, a.phone.slice(2), a.fingerprint, a.token, 'tok_'])
      expect(html, secret).not.toContain(secret);
    // The profile, the wallet, the history.
    expect(section(html, 'profile')).toMatch(/<dt>Status<\/dt>\s*<dd><span class="badge good">active<\/span>/);
    expect(section(html, 'profile')).toContain('42.50');
    expect(section(html, 'wallet')).toContain('12/2033');
    expect(section(html, 'history')).toContain('Signed up');
    // The graph: drawn from the JSON block, said in the table; the shared device counted, its other customer
    // never named there.
    const graph = section(html, 'graph');
    expect(graph).toMatch(/<div id="identity-graph" role="img" aria-label="The identity graph of this customer: /);
    const json = /<script type="application\/json" id="identity-graph-data">([^<]*)<\/script>/.exec(graph)?.[1];
    const elements = JSON.parse(json ?? '[]') as { data: { id: string; kind?: string; label?: string } }[];
    expect(new Set(elements.map((e) => e.data.kind).filter(Boolean))).toEqual(
      new Set(['customer', 'card', 'device', 'address', 'identifier', 'others']),
    );
    expect(elements.find((e) => e.data.kind === 'others')?.data.label).toBe('1 other customer');
    expect(graph).toMatch(
      /<th scope="row">Device<\/th><td>Device [^<]+<\/td><td>trust score 0\.50[^<]*<\/td><td>1 other customer<\/td>/,
    );
    expect(graph).toContain('Dublin, IE');
    expect(graph).not.toContain(b.customerId);
    expect(graph).not.toContain(a.street);
    // The other customer is a possible match, with its evidence and (for ops) a merge to propose.
    const matches = section(html, 'possible-matches');
    expect(matches).toContain(`href="/console/customers/${b.customerId}"`);
    expect(matches).toContain('both log in from device');
    expect(matches).toContain('action="/console/actions/merge-propose"');
    // The onboarding workflow, with its summary and its deep link into the Temporal UI.
    const described = await h.client.workflow.getHandle(`onboarding-${a.key}`).describe();
    const { temporalUiUrl, namespace } = h.deps.console;
    expect(section(html, 'workflows')).toContain(
      `class="temporal-link" href="${temporalUiUrl}/namespaces/${namespace}/workflows/onboarding-${a.key}/` +
        `${described.runId}/history"`,
    );
    expect(section(html, 'workflows')).toContain('Onboard a Subscriber customer with verified email');
  });

  it('answers an unknown customer with the 404 page, a malformed id with the 400 page', async () => {
    const unknown = await page(`/console/customers/${randomUUID()}`);
    expect(unknown.status).toBe(404);
    expect(unknown.html).toContain('not found');
    const malformed = await page('/console/customers/not-a-customer');
    expect(malformed.status).toBe(400);
    expect(malformed.html).toContain('id: not a customer id');
  });
});

describe('actions ops decide', () => {
  it('resolves a fraud review: a confirmation first, then the outcome; the customer is active again', async () => {
    const c = await onboard();
    const chimera = await h.token('fraud:report');
    const outcomeId = `ato-${randomUUID()}`;
    const reported = await api('POST', '/api/v1/fraud-outcomes', chimera, {
      outcome_id: outcomeId,
      customer_id: c.customerId,
      outcome: 'account_takeover',
    });
    expect(reported.status).toBe(202);
    const status = async () =>
      (await api('GET', `/api/v1/fraud-outcomes/${outcomeId}`, chimera)).json as unknown as FraudOutcomeStatus;
    await until(async () => (await status()).state === 'awaiting_review');
    // Found by the outcome's id.
    const found = await searchFor('fraud_outcome', outcomeId);
    expect([found.status, found.location]).toEqual([303, `/console/customers/${c.customerId}`]);

    const html = await customerPageWhen(c.customerId, (p) => p.includes('action="/console/actions/fraud-review"'));
    expect(section(html, 'profile')).toContain('suspended');
    expect(section(html, 'workflows')).toContain(`value="${outcomeId}"`);
    const { confirm, outcome } = await confirmThenAct('fraud-review', {
      _csrf: csrfOf(html),
      outcome_id: outcomeId,
      decision: 'reinstate',
      note: 'the customer called from the verified phone',
      _back: `/console/customers/${c.customerId}`,
    });
    expect(confirm.status).toBe(200);
    expect(confirm.html).toContain('Reinstate the customer?');
    expect(confirm.html).toContain('the customer is active again');
    expect(outcome?.status).toBe(200);
    expect(outcome?.html).toContain(`Fraud outcome ${outcomeId}: the customer is reinstated (active again).`);
    expect(outcome?.html).toContain(`href="/console/customers/${c.customerId}"`);
    const profile = await api('GET', `/api/v1/customers/${c.customerId}/profile`, ops);
    expect(profile.json.status).toBe('active');
    expect((await status()).state).toBe('reinstated');
    // A second decision is refused, and says why.
    const again = await postForm(h.app, '/console/actions/fraud-review', opsCookie, {
      _csrf: csrfOf(html),
      outcome_id: outcomeId,
      decision: 'confirm',
      _confirmed: 'yes',
    });
    expect(again.status).toBe(409);
    expect(await again.text()).toContain('Not possible now');
  });

  it('shows why a recovery’s next retry is when it is, and cancels it with a reason', async () => {
    const c = await onboard({ token: `tok_decline_insufficient_funds_${randomUUID().slice(0, 8)}` });
    const payment = await recoveryInDunning(c);
    const found = await searchFor('payment', payment);
    expect([found.status, found.location]).toEqual([303, `/console/customers/${c.customerId}`]);

    const html = await customerPageWhen(c.customerId, (p) => p.includes('action="/console/actions/cancel-recovery"'));
    const before = await recoveryOf(payment);
    const workflows = decodeHtml(section(html, 'workflows'));
    expect(workflows).toContain('Recovery dunning');
    expect(workflows).toContain(`why then: ${before.next_retry_reason as string}`);
    expect(workflows).toMatch(/<label for="reason-cancel-payment-recovery-[^"]+">Reason<\/label>/);

    const fields = { _csrf: csrfOf(html), payment_id: payment, _back: `/console/customers/${c.customerId}` };
    const noReason = await postForm(h.app, '/console/actions/cancel-recovery', opsCookie, fields);
    expect(noReason.status).toBe(400);
    expect(await noReason.text()).toContain('reason: say why');
    expect((await recoveryOf(payment)).state).toBe('dunning');

    const { confirm, outcome } = await confirmThenAct('cancel-recovery', { ...fields, reason: 'customer disputes it' });
    expect(confirm.status).toBe(200);
    expect(confirm.html).toContain('Cancel this recovery?');
    expect(confirm.html).toContain(`The recovery of payment ${payment} is dunning`);
    expect(outcome?.status).toBe(200);
    expect(outcome?.html).toContain(`The recovery of payment ${payment} took the cancel; it is stopped now`);
    const result = (await h.client.workflow.getHandle(`payment-recovery-${payment}`).result()) as RecoveryStatus;
    expect(result).toMatchObject({ state: 'stopped', stop_reason: 'cancelled: customer disputes it' });
    // One cancel per recovery: a second one (a form sent again, another operator) joins the first and
    // is answered with how it ended, the first reason kept.
    const again = await postForm(h.app, '/console/actions/cancel-recovery', opsCookie, {
      ...fields,
      reason: 'again',
      _confirmed: 'yes',
    });
    expect(again.status).toBe(200);
    expect(await again.text()).toContain('Why it stopped: cancelled: customer disputes it');
  });

  it('starts an expiry scan from the operations page, and links to it in the Temporal UI', async () => {
    const asOf = '1999-06-15';
    try {
      await h.client.workflow.getHandle(`expiry-scan-${asOf}`).terminate('test set-up');
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError) && !/already completed|not running/i.test(String(err))) throw err;
    }
    const ops = await page('/console/operations');
    expect(ops.status).toBe(200);
    expect(ops.html).toContain('<section id="expiry-scan"');
    expect(ops.html).toContain('<section id="event-relay"');
    expect(ops.html).toMatch(/<label for="as-of">/);
    const { confirm, outcome } = await confirmThenAct('expiry-scan', {
      _csrf: csrfOf(ops.html),
      as_of: asOf,
      reason: 'the console test',
      _back: '/console/operations',
    });
    expect(confirm.html).toContain(`A card-expiry scan as of ${asOf} starts now`);
    expect(outcome?.status).toBe(200);
    expect(outcome?.html).toContain(`Workflow expiry-scan-${asOf} scans the cards as of ${asOf}.`);
    const described = await h.client.workflow.getHandle(`expiry-scan-${asOf}`).describe();
    const { temporalUiUrl, namespace } = h.deps.console;
    expect(outcome?.html).toContain(
      `<a class="temporal-link" href="${temporalUiUrl}/namespaces/${namespace}/workflows/expiry-scan-${asOf}/` +
        `${described.runId}/history">`,
    );
    await h.client.workflow.getHandle(`expiry-scan-${asOf}`).result();
  });
});

describe('merges ops decide', () => {
  it('proposes a merge of a possible match (ops alone), follows the merged id, and undoes it', async () => {
    const a = await onboard();
    const b = await onboard({ fingerprint: a.fingerprint });
    const html = await customerPageWhen(a.customerId, (p) => p.includes(`value="${b.customerId}"`));
    const back = `/console/customers/${a.customerId}`;
    const proposed = await confirmThenAct('merge-propose', {
      _csrf: csrfOf(html),
      survivor_id: a.customerId,
      merged_id: b.customerId,
      consent: 'no',
      reason: 'the same person, confirmed on a call',
      _back: back,
    });
    expect(proposed.confirm.html).toContain('Ops decide alone: the merge happens now');
    expect(proposed.outcome?.status).toBe(200);
    const mergeId = /Started: (identity-merge-[0-9a-f-]+)/.exec(proposed.outcome?.html ?? '')?.[1] as string;
    expect(mergeId).toBeDefined();
    const state = async () => (await api('GET', `/api/v1/identity-merges/${mergeId}`, ops)).json.state;
    await until(async () => (await state()) === 'merged');

    // The merged record's page is its survivor's, which says so.
    const merged = await page(`/console/customers/${b.customerId}`);
    expect([merged.status, merged.location]).toEqual([303, `${back}?from=${b.customerId}`]);
    expect((await page(merged.location as string)).html).toContain(
      `Customer ${b.customerId} was merged into this customer`,
    );
    const survivor = await customerPageWhen(a.customerId, (p) => p.includes('action="/console/actions/merge-undo"'));
    expect(section(survivor, 'wallet').match(/<tr><th scope="row">card<\/th>/g)).toHaveLength(2);

    const undone = await confirmThenAct('merge-undo', {
      _csrf: csrfOf(survivor),
      merge_id: mergeId,
      reason: 'two people after all',
      _back: back,
    });
    expect(undone.confirm.html).toContain('Undo this merge?');
    expect(undone.outcome?.status).toBe(200);
    expect(undone.outcome?.html).toContain(`Identity merge ${mergeId} is undone.`);
    expect(await state()).toBe('undone');
    const profile = await api('GET', `/api/v1/customers/${b.customerId}/profile`, ops);
    expect([profile.json.status, profile.json.merged_into]).toEqual(['active', undefined]);
  });
});

describe('a session that only reads customers', () => {
  it('sees the page without any action, the history or contests, and an action posted anyway is refused', async () => {
    const c = await onboard({ token: `tok_decline_insufficient_funds_${randomUUID().slice(0, 8)}` });
    const payment = await recoveryInDunning(c);
    // Ops would see the cancellation: the reader's page lacks it for its scopes, not for lack of a recovery.
    await customerPageWhen(c.customerId, (p) => p.includes('action="/console/actions/cancel-recovery"'));
    const html = await customerPageWhen(c.customerId, (p) => p.includes(`payment-recovery-${payment}`), readerCookie);
    expect(html).not.toContain('/console/actions/');
    expect(html).not.toContain('<section id="history"');
    // Contests name history entries and hold the customer's words: the history's rule (ops).
    expect(html).not.toContain('<section id="contests"');
    expect(html).not.toContain('href="/console/operations"');
    expect(html).toContain(maskEmail(c.email));

    const refused = await postForm(h.app, '/console/actions/cancel-recovery', readerCookie, {
      _csrf: csrfOf(html),
      payment_id: payment,
      reason: 'not mine to decide',
      _confirmed: 'yes',
    });
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain('do not allow this action');
    expect((await recoveryOf(payment)).state).toBe('dunning');
    expect((await page('/console/operations', readerCookie)).status).toBe(403);
    await h.client.workflow
      .getHandle(`payment-recovery-${payment}`)
      .executeUpdate(cancelRecoveryUpdate, { args: [{ reason: 'test over' }] });
  });
});
