/**
 * The customer's own console page (/console/me) end to end, as a browser uses it (the session
 * cookie, the page's CSRF token, confirm then act) on the real api, worker, Temporal and Neo4j:
 * only their own data, masked; the wallet, devices, addresses and contests changed through the
 * api's own services and guards; export and erasure with the step-up rule. And the graph writes
 * behind them (device and address removal, contests, choosing the default), on their own.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContestsSection } from '../../api/console/contests';
import { CONTESTS_PER_DAY, contestHistoryEntry, listHistoryContests } from '../../graph/audit';
import { readCustomerGraph } from '../../graph/console';
import {
  DEVICE_CUSTOMERS,
  DISOWN_DEVICE,
  getAddressesByCustomer,
  getDevicesByCustomer,
  InvalidInputError,
  InvalidStateError,
  getPaymentMethodsByCustomer,
  listCustomerEvents,
  NotFoundError,
  removeAddressFromCustomer,
  removeDeviceFromCustomer,
  setCustomerStatusTx,
  setDefaultPaymentMethod,
  writeTx,
} from '../../graph';
import type { FraudOutcomeStatus } from '../../temporal/fraud';
import { startHarness, type Harness } from '../support/api';
import { csrfOf, getPage, postForm, signIn as signInToConsole } from '../support/console';
import { uniqueEmail } from '../support/graph';
import { send } from '../support/http';
import { until } from '../support/wait';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h?.close());

// ---- seeding through the REST api ---------------------------------------------------------------

interface Person {
  email: string;
  phone: string;
  fingerprint: string;
  cardToken: string;
  street: string;
}

const person = (overrides: Partial<Person> = {}): Person => ({
  email: uniqueEmail('me'),
  phone: `+4479${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`,
  fingerprint: `fp-${randomUUID()}`,
  cardToken: `tok_${randomUUID()}`,
  street: `${Math.floor(Math.random() * 900) + 100} Contested Road`,
  ...overrides,
});

/** A JSON call (null when the body is empty); an onboarding gets an Idempotency-Key of its own. */
const api = (method: string, path: string, token: string, body?: unknown) =>
  send(h.app, method, path, {
    token,
    body,
    headers: path.startsWith('/api/v1/onboarding') ? { 'idempotency-key': randomUUID() } : {},
    empty: null,
  });

async function onboard(p: Person): Promise<string> {
  const { status, json } = await api(
    'POST',
    '/api/v1/onboarding?wait=true',
    await h.token('onboarding:write customers:write'),
    {
      customer: { segment: 'Subscriber', ltv: '12.5' },
      payment_method: {
        type: 'card',
        token: p.cardToken,
        brand: 'visa',
        last_four: '4242',
        expiry_month: 12,
        expiry_year: 2031,
      },
      device: { fingerprint: p.fingerprint, ip: '198.51.100.7', user_agent: 'Safari' },
      address: { street1: p.street, city: 'Leeds', zip_code: 'LS1 1AA', country: 'GB', type: 'shipping' },
      digital_identifiers: [
        { type: 'email', value: p.email, is_verified: false },
        { type: 'phone_number', value: p.phone, is_verified: false },
      ],
    },
  );
  expect(status).toBe(200);
  expect(json.outcome).toBe('created');
  return json.customer_id as string;
}

interface WalletItem {
  id: string;
  brand: string;
  last_four: string;
  is_default: boolean;
  status: string;
}

async function wallet(customerId: string): Promise<WalletItem[]> {
  const { json } = await api('GET', `/api/v1/customers/${customerId}/payment-methods`, await h.token('ops'));
  return json.data as WalletItem[];
}

async function addCard(customerId: string, brand: string, lastFour: string): Promise<string> {
  const card = {
    type: 'card',
    token: `tok_${randomUUID()}`,
    brand,
    last_four: lastFour,
    expiry_month: 6,
    expiry_year: 2032,
  };
  const { status, json } = await api(
    'POST',
    `/api/v1/customers/${customerId}/payment-methods`,
    await h.token('customers:write'),
    card,
  );
  expect(status).toBe(201);
  return json.id as string;
}

async function suspend(customerId: string): Promise<void> {
  await writeTx(h.graph, (tx) =>
    setCustomerStatusTx(tx, customerId, 'suspended', 'CustomerSuspended', { reason: 'console test' }),
  );
}

// ---- a browser's session (test/support/console.ts) -----------------------------------------------

interface Browser {
  get(path: string): Promise<{ status: number; html: string; res: Response }>;
  post(path: string, fields: Record<string, string>): Promise<{ status: number; html: string }>;
  /** A console action: its confirmation page, then the confirmed step (the same fields, `_confirmed=yes`). */
  act(
    name: string,
    fields: Record<string, string>,
  ): Promise<{ confirm: { status: number; html: string }; done: { status: number; html: string } }>;
}

/** Signs in like a browser; every form then carries the session's CSRF token, read from a page of it. */
async function signIn(token: string): Promise<Browser> {
  const cookie = await signInToConsole(h.app, token);
  let csrf: string | null = null;
  const get = async (path: string) => {
    const res = await getPage(h.app, path, cookie);
    const html = res.headers.get('content-type')?.startsWith('text/html') ? await res.clone().text() : '';
    if (!csrf && html.includes('name="_csrf"')) csrf = csrfOf(html);
    return { status: res.status, html, res };
  };
  const post = async (path: string, fields: Record<string, string>) => {
    // Any page of the session carries its token (a 403 page too, in its sign-out form).
    if (!csrf) await get('/console/me');
    const res = await postForm(h.app, path, cookie, { _csrf: csrf ?? '', ...fields });
    return { status: res.status, html: await res.text() };
  };
  return {
    get,
    post,
    act: async (name, fields) => ({
      confirm: await post(`/console/actions/${name}`, fields),
      done: await post(`/console/actions/${name}`, { ...fields, _confirmed: 'yes' }),
    }),
  };
}

async function meOf(customerId: string, claims: { authTime?: number | null } = {}): Promise<Browser> {
  const browser = await signIn(await h.token('self', customerId, claims));
  const page = await browser.get('/console/me');
  expect(page.status).toBe(200);
  return browser;
}

function section(html: string, id: string): string {
  const found = new RegExp(`<section id="${id}"[\\s\\S]*?</section>`).exec(html)?.[0];
  expect(found, `section #${id}`).toBeDefined();
  return found as string;
}

const text = (html: string) =>
  html
    .replace(/<[^>]+>/g, ' ')
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ');

// ---- the page ---------------------------------------------------------------------------------------

describe('/console/me', () => {
  it('shows the customer their own data only, every identifier masked, no token anywhere', async () => {
    const alice = person();
    const bob = person();
    const [aliceId, bobId] = [await onboard(alice), await onboard(bob)];
    const me = await meOf(aliceId);
    const page = await me.get('/console/me');
    expect(page.res.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.res.headers.get('cache-control')).toBe('no-store');
    for (const id of ['profile', 'wallet', 'devices', 'addresses', 'history', 'export', 'erasure'])
      expect(page.html).toContain(`<section id="${id}"`);
    expect(page.html).toContain('<h1>Your data</h1>');
    const profile = text(section(page.html, 'profile'));
    expect(profile).toContain(`${alice.email.charAt(0)}***@example.com`);
    expect(profile).toContain(`+44 *** *** ${alice.phone.slice(-4)}`);
    expect(text(section(page.html, 'wallet'))).toContain('Visa ending 4242');
    expect(text(section(page.html, 'devices'))).toContain(`…${alice.fingerprint.slice(-4)}`);
    expect(text(section(page.html, 'addresses'))).toContain('Leeds');
    expect(text(section(page.html, 'history'))).toContain('Signed up');
    // Nothing unmasked, no token, nothing of the other customer; no inline script or style.
    for (const secret of [alice.email, alice.phone, alice.fingerprint, alice.cardToken, alice.street])
      expect(page.html).not.toContain(secret);
    for (const other of [bobId, bob.email, bob.fingerprint]) expect(page.html).not.toContain(other);
    expect(page.html).not.toMatch(/\bt2\.[A-Za-z0-9_.-]{20,}/);
    expect(page.html).not.toMatch(/<script(?![^>]*\bsrc=)/);
    expect(page.html).not.toMatch(/\sstyle=/);
    // Every control labelled: each contest textarea has its label.
    const areas = [...page.html.matchAll(/<textarea id="([^"]+)"/g)].map((m) => m[1]);
    expect(areas.length).toBeGreaterThan(0);
    for (const id of areas) expect(page.html).toContain(`<label for="${id}">What is wrong?</label>`);
  });

  it('answers an ops session, which has no page of its own, with a 403 page', async () => {
    const ops = await signIn(await h.token('ops'));
    const page = await ops.get('/console/me');
    expect(page.status).toBe(403);
    expect(page.html).toContain('customer’s own token');
    expect((await ops.get('/console/me/export')).status).toBe(403);
    const refused = await ops.act('remove-card', { payment_method_id: randomUUID() });
    expect(refused.confirm.status).toBe(403);
  });
});

describe('the wallet on /console/me', () => {
  it('removes the default card and the most recently used active one becomes the default', async () => {
    const p = person();
    const id = await onboard(p);
    const first = (await wallet(id))[0] as WalletItem;
    const second = await addCard(id, 'mastercard', '4444');
    expect((await wallet(id)).find((c) => c.is_default)?.id).toBe(first.id);
    const me = await meOf(id);
    const { confirm, done } = await me.act('remove-card', { payment_method_id: first.id, _back: '/console/me' });
    expect(confirm.status).toBe(200);
    expect(text(confirm.html)).toContain('Visa ending 4242 (expires 12/2031) will be removed');
    expect(text(confirm.html)).toContain(
      'Mastercard ending 4444, your most recently used active card, becomes the default',
    );
    expect(done.status).toBe(200);
    expect(text(done.html)).toContain('Your default card is now Mastercard ending 4444.');
    const after = await wallet(id);
    expect(after.map((c) => [c.id, c.is_default])).toEqual([[second, true]]);
    const page = text(section((await me.get('/console/me')).html, 'wallet'));
    expect(page).toContain('Mastercard ending 4444');
    expect(page).toContain('Default');
    expect(page).not.toContain('Visa ending 4242');
  });

  it('chooses another active card as the default, with its event', async () => {
    const id = await onboard(person());
    const chosen = await addCard(id, 'amex', '0005');
    const me = await meOf(id);
    const before = text(section((await me.get('/console/me')).html, 'wallet'));
    expect(before).toContain('Make Amex ending 0005 the default');
    const { confirm, done } = await me.act('default-card', { payment_method_id: chosen });
    expect(text(confirm.html)).toContain('Amex ending 0005 (expires 06/2032) will be your default card');
    expect(text(done.html)).toContain('Amex ending 0005 is now your default card.');
    expect((await wallet(id)).filter((c) => c.is_default).map((c) => c.id)).toEqual([chosen]);
    const [changed] = await listCustomerEvents(h.graph, id, { type: 'DefaultPaymentMethodChanged', limit: 1 });
    expect(changed?.payload).toMatchObject({ to: chosen });
    // The default already: refused, nothing changes.
    const again = await me.act('default-card', { payment_method_id: chosen });
    expect(again.confirm.status).toBe(409);
  });

  it("refuses another customer's card (404) and changes nothing", async () => {
    const [aliceId, bobId] = [await onboard(person()), await onboard(person())];
    const bobsCard = (await wallet(bobId))[0] as WalletItem;
    const alice = await meOf(aliceId);
    for (const action of ['remove-card', 'default-card']) {
      const { confirm, done } = await alice.act(action, { payment_method_id: bobsCard.id });
      expect([confirm.status, done.status], action).toEqual([404, 404]);
      expect(done.html).toContain('Not found');
    }
    expect(await wallet(bobId)).toEqual([bobsCard]);
    expect((await wallet(aliceId)).length).toBe(1);
  });

  it('lets a suspended customer read the wallet but not change it (403, nothing changes)', async () => {
    const id = await onboard(person());
    const other = await addCard(id, 'mastercard', '4444');
    const me = await meOf(id);
    await suspend(id);
    const page = await me.get('/console/me');
    expect(page.status).toBe(200);
    expect(text(section(page.html, 'profile'))).toContain('Your account is suspended');
    expect(section(page.html, 'wallet')).not.toContain('/console/actions/remove-card');
    const before = await wallet(id);
    for (const action of ['remove-card', 'default-card']) {
      const { confirm, done } = await me.act(action, { payment_method_id: other });
      expect([confirm.status, done.status], action).toEqual([403, 403]);
      expect(text(done.html)).toContain('the customer is suspended');
    }
    const device = (await getDevicesByCustomer(h.graph, id))[0];
    expect((await me.act('remove-device', { device_id: device?.id ?? '' })).done.status).toBe(403);
    expect(await wallet(id)).toEqual(before);
    expect(await getDevicesByCustomer(h.graph, id)).toHaveLength(1);
    // Contesting stays open to a suspended customer.
    expect(section(page.html, 'history')).toContain('/console/actions/contest');
  });
});

describe('a form posted from another site', () => {
  it('is refused (403) though it carries the session’s cookie and CSRF token, and changes nothing', async () => {
    const id = await onboard(person());
    const cookie = await signInToConsole(h.app, await h.token('self', id));
    const page = await getPage(h.app, '/console/me', cookie);
    const csrf = csrfOf(await page.text());
    const [card] = await getPaymentMethodsByCustomer(h.graph, id);
    const res = await h.app.request('/console/actions/remove-card', {
      method: 'POST',
      headers: {
        cookie,
        'sec-fetch-site': 'cross-site',
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ _csrf: csrf, payment_method_id: card?.id ?? '', _confirmed: 'yes' }).toString(),
      redirect: 'manual',
    });
    expect(res.status).toBe(403);
    expect(await res.text()).toContain('The request came from another site.');
    expect((await getPaymentMethodsByCustomer(h.graph, id)).map((m) => m.id)).toEqual([card?.id]);
  });
});

describe('devices and addresses on /console/me', () => {
  it('removes a device (disowned: kept for others and fraud checks) and an address, with their events', async () => {
    const shared = `fp-${randomUUID()}`;
    const alice = person({ fingerprint: shared });
    const aliceId = await onboard(alice);
    const bobId = await onboard(person({ fingerprint: shared }));
    const device = (await getDevicesByCustomer(h.graph, aliceId))[0];
    const address = (await getAddressesByCustomer(h.graph, aliceId))[0];
    const bobsAddress = (await getAddressesByCustomer(h.graph, bobId))[0];
    const me = await meOf(aliceId);

    const removed = await me.act('remove-device', { device_id: device?.id ?? '' });
    expect(text(removed.confirm.html)).toContain('will no longer be listed as one of your devices');
    expect(text(removed.confirm.html)).toContain('Other people who use it are not affected.');
    expect(removed.done.status).toBe(200);
    expect(text(removed.done.html)).toContain('is no longer one of your devices');
    expect(await getDevicesByCustomer(h.graph, aliceId)).toEqual([]);
    expect(await getDevicesByCustomer(h.graph, aliceId, { includeDisowned: true })).toEqual([
      expect.objectContaining({ id: device?.id, disowned_at: expect.any(String) as string }),
    ]);
    expect((await getDevicesByCustomer(h.graph, bobId)).map((d) => [d.id, d.disowned_at])).toEqual([
      [device?.id, null],
    ]);
    // The same form again (a double click, a second tab): answered as done, nothing new.
    const again = await me.act('remove-device', { device_id: device?.id ?? '' });
    expect([again.confirm.status, again.done.status]).toEqual([200, 200]);
    expect(text(again.confirm.html)).toContain('already: nothing changes');
    const deviceEvents = await listCustomerEvents(h.graph, aliceId, { type: 'DeviceRemovedByCustomer' });
    expect(deviceEvents.map((e) => e.payload)).toEqual([{ device_id: device?.id }]);

    // Bob's address is not Alice's to remove; nor is a device only Carol signed in from.
    expect((await me.act('remove-address', { address_id: bobsAddress?.id ?? '' })).done.status).toBe(404);
    const carolId = await onboard(person());
    const carols = (await getDevicesByCustomer(h.graph, carolId))[0];
    const notHers = await me.act('remove-device', { device_id: carols?.id ?? '' });
    expect([notHers.confirm.status, notHers.done.status]).toEqual([404, 404]);
    expect((await getDevicesByCustomer(h.graph, carolId)).map((d) => [d.id, d.disowned_at])).toEqual([
      [carols?.id, null],
    ]);
    expect(await listCustomerEvents(h.graph, carolId, { type: 'DeviceRemovedByCustomer' })).toEqual([]);
    const gone = await me.act('remove-address', { address_id: address?.id ?? '' });
    expect(text(gone.confirm.html)).toContain(
      `the address *** C******** R***, Leeds, GB will no longer be listed as one of your addresses`,
    );
    expect(gone.done.status).toBe(200);
    expect(await getAddressesByCustomer(h.graph, aliceId)).toEqual([]);
    expect(await getAddressesByCustomer(h.graph, aliceId, { includeDisowned: true })).toHaveLength(1);
    expect(await getAddressesByCustomer(h.graph, bobId)).toHaveLength(1);
    const [addressEvent] = await listCustomerEvents(h.graph, aliceId, { type: 'AddressRemovedByCustomer' });
    expect(addressEvent?.payload).toEqual({ address_id: address?.id });

    const page = await me.get('/console/me');
    expect(text(section(page.html, 'devices'))).toContain('No devices.');
    expect(text(section(page.html, 'addresses'))).toContain('No addresses.');
    expect(text(section(page.html, 'history'))).toContain('The customer removed a device from their devices');

    // Ops still see both on the customer page, marked.
    const ops = await signIn(await h.token('ops'));
    const graphSection = text(section((await ops.get(`/console/customers/${aliceId}`)).html, 'graph'));
    expect(graphSection).toContain('disowned by the customer');
  });
});

describe('contesting a history entry', () => {
  it('records a new event with the customer’s words, leaves the entry as it was, and ops see it', async () => {
    const [aliceId, bobId] = [await onboard(person()), await onboard(person())];
    const me = await meOf(aliceId);
    const [added] = await listCustomerEvents(h.graph, aliceId, { type: 'PaymentMethodAdded', limit: 1 });
    const entry = added as NonNullable<typeof added>;
    const words = 'I never added this card.\nPlease check.';

    // Another customer's entry is not in Alice's history; blank or too long words are refused.
    const [bobs] = await listCustomerEvents(h.graph, bobId, { limit: 1 });
    expect((await me.act('contest', { event_id: bobs?.id ?? '', words })).confirm.status).toBe(404);
    expect((await me.act('contest', { event_id: entry.id, words: '   ' })).confirm.status).toBe(400);
    expect((await me.act('contest', { event_id: entry.id, words: 'x'.repeat(1001) })).confirm.status).toBe(400);

    const requestId = randomUUID();
    const { confirm, done } = await me.act('contest', { event_id: entry.id, words, request_id: requestId });
    expect(confirm.status).toBe(200);
    expect(text(confirm.html)).toContain('Payment method added: visa ending 4242');
    expect(confirm.html).toContain('I never added this card.');
    expect(done.status).toBe(200);
    expect(text(done.html)).toContain('Entry contested');
    // The same confirmed form again (a double click): nothing new.
    await me.post('/console/actions/contest', { event_id: entry.id, words, request_id: requestId, _confirmed: 'yes' });

    const contests = await listCustomerEvents(h.graph, aliceId, { type: 'HistoryEntryContested' });
    expect(contests).toHaveLength(1);
    expect(contests[0]?.payload).toEqual({
      contested_event_id: entry.id,
      contested_type: 'PaymentMethodAdded',
      contested_occurred_at: expect.any(String) as string,
      words,
    });
    const [unchanged] = await listCustomerEvents(h.graph, aliceId, { type: 'PaymentMethodAdded', limit: 1 });
    expect(unchanged).toEqual(entry);

    // The customer's history says so, in words; a contest itself offers no contest.
    const history = section((await me.get('/console/me')).html, 'history');
    expect(text(history)).toContain('The customer contested the entry of');
    expect(text(history)).toContain('(payment method added): “I never added this card.');

    // Ops read it on the customer page, with the entry it names.
    const ops = await signIn(await h.token('ops'));
    const opsPage = await ops.get(`/console/customers/${aliceId}`);
    expect(opsPage.status).toBe(200);
    const html = section(opsPage.html, 'contests');
    expect(text(html)).toContain('I never added this card.');
    expect(text(html)).toContain('Payment method added: visa ending 4242');
    expect(html).toContain(entry.id);
    // Nobody without customers:read sees it.
    const selfSession = { token: '', csrf: '', principal: { subject: aliceId, scopes: new Set(['self']) } };
    expect(await ContestsSection({ deps: h.deps, customerId: aliceId, session: selfSession })).toBeNull();
  });
});

describe('export and erasure on /console/me', () => {
  it('downloads the export as an attachment, never a token', async () => {
    const p = person();
    const id = await onboard(p);
    const me = await meOf(id);
    const { res } = await me.get('/console/me/export');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="persona-export-${id}.json"`);
    const body = await res.text();
    expect(body).not.toContain(p.cardToken);
    expect(JSON.parse(body)).toMatchObject({ profile: { customer_id: id }, devices: [{ fingerprint: p.fingerprint }] });
  });

  it('asks a customer whose sign-in is too old to sign in again, and starts no erasure', async () => {
    const id = await onboard(person());
    const me = await meOf(id, { authTime: Math.floor(Date.now() / 1000) - 3600 });
    const page = await me.get('/console/me');
    expect(text(section(page.html, 'erasure'))).toContain('sign in again');
    const exported = await me.get('/console/me/export');
    expect(exported.status).toBe(401);
    expect(exported.res.headers.get('content-disposition')).toBeNull();
    expect(text(exported.html)).toContain('Sign in again');
    const { confirm, done } = await me.act('erase', {});
    expect([confirm.status, done.status]).toEqual([401, 401]);
    expect(text(done.html)).toContain('To erase your data, you need to have signed in within the last 5 minutes');
    await expect(h.client.workflow.getHandle(`erasure-${id}`).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
  });

  it('erases after saying what goes, and the page says where the erasure is', async () => {
    const id = await onboard(person());
    const me = await meOf(id);
    const { confirm, done } = await me.act('erase', {});
    expect(confirm.status).toBe(200);
    expect(text(confirm.html)).toContain('your contact details (email addresses and phone numbers)');
    expect(text(confirm.html)).toContain('This cannot be undone.');
    expect(done.status).toBe(200);
    expect(text(done.html)).toContain(`Your erasure has started (process erasure-${id})`);
    await h.client.workflow.getHandle(`erasure-${id}`).result();
    const page = await me.get('/console/me');
    expect(text(section(page.html, 'erasure'))).toContain('Your data was erased.');
    expect(section(page.html, 'erasure')).not.toContain('/console/actions/erase');
  });
});

// ---- the graph writes behind the page ---------------------------------------------------------------

describe('graph: what a customer removes or contests', () => {
  it(
    'disowns a device: the edge, the USED_ON edges and the node stay, the page stops listing it, a fraud outcome ' +
      'naming it is still accepted and applied, the context no longer counts it as trusted, a second removal is ' +
      'idempotent, a new login clears it',
    async () => {
      const shared = `fp-${randomUUID()}`;
      const [a, b] = [await onboard(person({ fingerprint: shared })), await onboard(person({ fingerprint: shared }))];
      const deviceId = (await getDevicesByCustomer(h.graph, a))[0]?.id as string;
      await expect(removeDeviceFromCustomer(h.graph, a, randomUUID())).rejects.toBeInstanceOf(NotFoundError);
      // a earned trust there (their login edge); b, on the same device, did not.
      await h.graph.query(
        'MATCH (:Customer {id: $a})-[l:LOGGED_IN_FROM]->(d:Device {id: $id}) SET l.trust_score = 0.9',
        {
          a,
          id: deviceId,
        },
      );
      const agent = await h.token('fraud:report context:read');
      const trusted = async () =>
        ((await api('GET', `/api/v1/customers/${a}/context`, agent)).json.trusted_devices as { device_id: string }[])
          .map((d) => d.device_id)
          .includes(deviceId);
      await until(trusted);
      // Each onboarding's card was used on the device.
      const uses = async () =>
        (
          await h.graph.query<{ owner: string }>(
            'MATCH (c:Customer)-[:HAS_PAYMENT_METHOD]->()-[:USED_ON]->(:Device {id: $id}) RETURN c.id AS owner',
            { id: deviceId },
          )
        )
          .map((u) => u.owner)
          .sort();
      expect(await uses()).toEqual([a, b].sort());

      // The statement seeks the customer and expands from it, never from a device others share.
      const plan = await h.graph.driver.executeQuery(
        `EXPLAIN ${DISOWN_DEVICE}`,
        { customerId: a, deviceId },
        { database: h.graph.database },
      );
      const ops: string[] = [];
      const walk = (p: { operatorType: string; arguments: { Details?: string }; children: unknown[] }) => {
        ops.push(`${p.operatorType} ${p.arguments.Details ?? ''}`);
        p.children.forEach((c) => walk(c as typeof p));
      };
      walk(plan.summary.plan as never);
      expect(ops.join('\n')).toMatch(/NodeUniqueIndexSeek\S* UNIQUE c:Customer\(id\)/);
      expect(ops.join('\n')).toMatch(/Expand\(All\)\S* \(c\)-\[r:LOGGED_IN_FROM\]->\(d\)/);
      expect(ops.join('\n')).not.toMatch(/d:Device\(id\)/);

      const first = await removeDeviceFromCustomer(h.graph, a, deviceId);
      expect(first).toEqual({ device_id: deviceId, disowned_at: expect.any(String) as string, recorded: true });
      // Nothing deleted: a's login edge (marked), both cards' uses, the device with its trust.
      const edges = await h.graph.query<{ customer: string; disowned: string | null; trust: number }>(
        `MATCH (c:Customer)-[r:LOGGED_IN_FROM]->(d:Device {id: $id})
         RETURN c.id AS customer, r.disowned_at AS disowned, r.trust_score AS trust ORDER BY customer`,
        { id: deviceId },
      );
      expect(edges).toEqual(
        [
          { customer: a, disowned: first.disowned_at, trust: 0.9 },
          { customer: b, disowned: null, trust: 0.5 },
        ].sort((x, y) => (x.customer < y.customer ? -1 : 1)),
      );
      expect(await uses()).toEqual([a, b].sort());
      // The customer's own reads drop it; the shared-device read, ops' page and matches still see a.
      expect(await getDevicesByCustomer(h.graph, a)).toEqual([]);
      const [onDevice] = await h.graph.query<{ customerIds: string[] }>(DEVICE_CUSTOMERS, {
        fingerprint: shared,
        cap: 10,
      });
      expect([...(onDevice?.customerIds ?? [])].sort()).toEqual([a, b].sort());
      expect((await readCustomerGraph(h.graph, a)).devices).toEqual([
        expect.objectContaining({ id: deviceId, disowned_at: first.disowned_at, shared_with: 1 }),
      ]);
      await until(async () => !(await trusted()));
      const checkout = await api('GET', `/api/v1/customers/${a}/checkout-options?deviceId=${deviceId}`, agent);
      expect(checkout.json.trusted_device).toBe(false);

      // Again: the same answer, no second event.
      expect(await removeDeviceFromCustomer(h.graph, a, deviceId)).toEqual({ ...first, recorded: false });
      const removals = await listCustomerEvents(h.graph, a, { type: 'DeviceRemovedByCustomer' });
      expect(removals.map((e) => e.payload)).toEqual([{ device_id: deviceId }]);

      // The fraud system's account takeover report, arriving after the removal: accepted and applied.
      const outcomeId = `ato-${randomUUID()}`;
      const reported = await api('POST', '/api/v1/fraud-outcomes', agent, {
        outcome_id: outcomeId,
        customer_id: a,
        outcome: 'account_takeover',
        device_id: deviceId,
      });
      expect(reported.status).toBe(202);
      const statusOf = async () =>
        (await api('GET', `/api/v1/fraud-outcomes/${outcomeId}`, agent)).json as unknown as FraudOutcomeStatus;
      await until(async () => (await statusOf()).state === 'awaiting_review');
      expect((await statusOf()).applied?.changes).toEqual(
        expect.arrayContaining([
          { entity: 'device', id: deviceId, field: 'trust_score', from: 1, to: 0 },
          { entity: 'customer', id: a, field: 'status', from: 'active', to: 'suspended' },
        ]),
      );
      await until(async () => (await api('GET', `/api/v1/customers/${a}/context`, agent)).json.status === 'suspended');

      // A login reported from before the removal (late) leaves it disowned; a new one makes it a's again,
      // with the trust the fraud left (0), never a fresh device's 0.5.
      const login = async (occurredAt: Date) => {
        const res = await api('POST', '/api/v1/interactions', await h.token('interactions:write'), {
          data: [
            {
              id: `login-${randomUUID()}`,
              type: 'login',
              customer_id: a,
              occurred_at: occurredAt.toISOString(),
              device: { fingerprint: shared },
            },
          ],
        });
        expect(res.json.data).toEqual([expect.objectContaining({ result: 'recorded' })]);
      };
      await login(new Date(Date.parse(first.disowned_at) - 60_000));
      expect(await getDevicesByCustomer(h.graph, a)).toEqual([]);
      await login(new Date());
      expect(await getDevicesByCustomer(h.graph, a)).toEqual([
        expect.objectContaining({ id: deviceId, disowned_at: null, trust_score: 0 }),
      ]);
      const linked = await listCustomerEvents(h.graph, a, { type: 'DeviceLinked', limit: 1 });
      expect(linked[0]?.payload).toMatchObject({ device_id: deviceId, new_device: false });
    },
  );

  it('disowns an address: the edge and the node stay, once; a later shipment to it clears it', async () => {
    const p = person();
    const id = await onboard(p);
    const addressId = (await getAddressesByCustomer(h.graph, id))[0]?.id as string;
    await expect(removeAddressFromCustomer(h.graph, id, randomUUID())).rejects.toBeInstanceOf(NotFoundError);
    const first = await removeAddressFromCustomer(h.graph, id, addressId);
    expect(first).toEqual({ address_id: addressId, disowned_at: expect.any(String) as string, recorded: true });
    expect(await removeAddressFromCustomer(h.graph, id, addressId)).toEqual({ ...first, recorded: false });
    expect(await getAddressesByCustomer(h.graph, id)).toEqual([]);
    const [kept] = await h.graph.query<{ disowned: string }>(
      'MATCH (:Customer {id: $id})-[s:SHIPPED_TO]->(:Address {id: $addressId}) RETURN s.disowned_at AS disowned',
      { id, addressId },
    );
    expect(kept?.disowned).toBe(first.disowned_at);
    expect((await readCustomerGraph(h.graph, id)).addresses).toEqual([
      expect.objectContaining({ id: addressId, disowned_at: first.disowned_at }),
    ]);
    expect(await listCustomerEvents(h.graph, id, { type: 'AddressRemovedByCustomer' })).toHaveLength(1);
    const res = await api('POST', '/api/v1/interactions', await h.token('interactions:write'), {
      data: [
        {
          id: `ship-${randomUUID()}`,
          type: 'shipment',
          customer_id: id,
          occurred_at: new Date().toISOString(),
          address: { street1: p.street, city: 'Leeds', zip_code: 'LS1 1AA', country: 'GB' },
        },
      ],
    });
    expect(res.json.data).toEqual([expect.objectContaining({ result: 'recorded' })]);
    expect((await getAddressesByCustomer(h.graph, id)).map((a) => [a.id, a.disowned_at])).toEqual([[addressId, null]]);
  });

  it('refuses a removal or a default for a customer not allowed to change (under the lock)', async () => {
    const id = await onboard(person());
    const card = await addCard(id, 'mastercard', '4444');
    const addressId = (await getAddressesByCustomer(h.graph, id))[0]?.id as string;
    await suspend(id);
    await expect(
      removeAddressFromCustomer(h.graph, id, addressId, { allowStatuses: ['active'] }),
    ).rejects.toBeInstanceOf(InvalidStateError);
    await expect(setDefaultPaymentMethod(h.graph, id, card, { allowStatuses: ['active'] })).rejects.toBeInstanceOf(
      InvalidStateError,
    );
    // Ops (active or suspended) may.
    await setDefaultPaymentMethod(h.graph, id, card);
    expect(await removeAddressFromCustomer(h.graph, id, addressId)).toMatchObject({
      address_id: addressId,
      recorded: true,
    });
  });

  it('records a contest once per request, never of a contest, 10 a day, and lists it with its entry', async () => {
    const id = await onboard(person());
    const [entry] = await listCustomerEvents(h.graph, id, { type: 'CustomerOnboarded', limit: 1 });
    const request = { event_id: entry?.id as string, words: '  Not me  ', request_id: randomUUID() };
    const first = await contestHistoryEntry(h.graph, id, request);
    expect(first.recorded).toBe(true);
    expect(await contestHistoryEntry(h.graph, id, request)).toEqual({ ...first, recorded: false });
    await expect(
      contestHistoryEntry(h.graph, id, { event_id: first.contest_id, words: 'no', request_id: randomUUID() }),
    ).rejects.toBeInstanceOf(InvalidInputError);
    await expect(
      contestHistoryEntry(h.graph, randomUUID(), { ...request, request_id: randomUUID() }),
    ).rejects.toBeInstanceOf(NotFoundError);
    const [listed] = await listHistoryContests(h.graph, id, 10);
    expect(listed?.contest).toMatchObject({ id: first.contest_id, payload: { words: 'Not me' } });
    expect(listed?.entry).toEqual(entry);
    // A day holds a bounded number of contests: the rest are refused, and nothing is written.
    for (let n = 1; n < CONTESTS_PER_DAY; n++)
      await contestHistoryEntry(h.graph, id, { ...request, words: `again ${n}`, request_id: randomUUID() });
    await expect(
      contestHistoryEntry(h.graph, id, { ...request, words: 'one too many', request_id: randomUUID() }),
    ).rejects.toThrow(/contested in the last day already/);
    expect(await listHistoryContests(h.graph, id, 100)).toHaveLength(CONTESTS_PER_DAY);
  });
});
