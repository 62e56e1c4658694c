/**
 * The contract test (`npm run test:contract`): schemathesis, the property-based API fuzzer, sends
 * generated requests built from /openapi.json to a real api (with a real worker, Neo4j and
 * Temporal) and fails on any server error, undocumented status, response that breaks its
 * schema, invalid request accepted, or valid request refused (test/contract/schemathesis.toml).
 *
 * It runs on a Neo4j and a Temporal of its own (test/support/privateServices.ts), so what the
 * fuzzer does — scans as of any day, erasures, fraud suspensions — never touches the shared
 * stack or a developer's graph. So that it reaches past authentication and finds records, it
 * seeds customers, cards, a device, a recovery (and one that needs attention), a fraud outcome
 * awaiting review, an expiry scan and the event relay, and hands their ids and tokens (ops, and
 * the customer's own for self-service routes) to schemathesis; a run where an operation got fewer than MIN_EXAMPLES
 * cases, or no valid request of an operation was answered 2xx, or every call answered
 * 401/403/404, fails. Everything it starts it stops. Exit code 0 only for a clean run.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Notification } from '../../clients/notifications';
import { loadConfig, loadSettings, repoRoot } from '../../config/env';
import { addPaymentMethod, createCustomer, createDriver, linkDevice, migrate } from '../../graph';
import { encodeCursor } from '../../graph/feed';
import { graphFromConfig } from '../../runtime/graph';
import { stackPaths } from '../../stack/install';
import { stackDown, stackUp } from '../../stack/services';
import { payloadCodecFromConfig } from '../../temporal/payloadCodec';
import { connectTemporal } from '../../temporal/connection';
import { ensureEventRelay } from '../../temporal/singletons';
import { signToken } from '../support/api';
import { cardInput, uniqueEmail } from '../support/graph';
import { privateNeo4j, privateTemporal } from '../support/privateServices';
import { startApiProcess, startWorkerProcess, stopProcess } from '../support/processes';
import { until } from '../support/wait';

/** Every operation must have been tried with at least this many generated requests. */
const MIN_EXAMPLES = Number(process.env.PERSONA_CONTRACT_MIN_EXAMPLES ?? 40);
/** The whole fuzzing run, at most (it normally takes a few minutes). */
const TIME_LIMIT_MS = Number(process.env.PERSONA_CONTRACT_TIME_LIMIT_MS ?? 20 * 60_000);

const log = (line: string): void => console.log(`[contract] ${line}`);

interface Scenario {
  label: string;
  cases: number;
  statuses: Map<number, number>;
  /** Valid (positive) requests answered 2xx. */
  accepted: number;
}

/** Per operation: generated cases and the statuses they got, from schemathesis's NDJSON events. */
function summarise(ndjson: string): Map<string, Scenario> {
  const byOperation = new Map<string, Scenario>();
  for (const line of ndjson.split('\n')) {
    if (!line.trim()) continue;
    const event = JSON.parse(line) as Record<string, unknown>;
    const finished = event.ScenarioFinished as { recorder?: Record<string, unknown> } | undefined;
    const recorder = finished?.recorder as
      | {
          label: string;
          cases?: Record<string, { value?: { meta?: { generation?: { mode?: string } } } }>;
          interactions?: Record<string, { response?: { status_code: number } }>;
        }
      | undefined;
    if (!recorder) continue;
    const s = byOperation.get(recorder.label) ?? { label: recorder.label, cases: 0, statuses: new Map(), accepted: 0 };
    s.cases += Object.keys(recorder.cases ?? {}).length;
    for (const [id, i] of Object.entries(recorder.interactions ?? {})) {
      const code = i.response?.status_code;
      if (code === undefined) continue;
      s.statuses.set(code, (s.statuses.get(code) ?? 0) + 1);
      const positive = recorder.cases?.[id]?.value?.meta?.generation?.mode === 'positive';
      if (positive && code >= 200 && code < 300) s.accepted += 1;
    }
    byOperation.set(recorder.label, s);
  }
  return byOperation;
}

/** What main started, stopped in reverse order however the run ends (a signal included). */
const cleanups: { name: string; run: () => unknown }[] = [];
async function cleanUp(): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) {
    try {
      await c.run();
    } catch (err) {
      log(`could not stop ${c.name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping what the run started`);
    void cleanUp().then(() => process.exit(130));
  });
}

async function main(): Promise<number> {
  const settings = loadSettings();
  const { started } = await stackUp(settings, (line) => log(`stack: ${line}`));
  if (started.length > 0)
    cleanups.push({ name: 'the stack', run: () => stackDown(settings, () => undefined, started) });
  const config = loadConfig();
  const st = path.join(stackPaths(settings.PERSONA_STACK_DIR).venv, 'bin', 'schemathesis');
  if (!existsSync(st)) throw new Error(`${st} is missing: run npm run stack:install`);
  const reportDir = path.join(settings.PERSONA_STACK_DIR, 'contract', new Date().toISOString().replace(/[:.]/g, '-'));
  mkdirSync(reportDir, { recursive: true });

  // A Neo4j and a Temporal of its own: the fuzzer's writes (scans as of any day, erasures,
  // suspensions, the event relay) stay there, and go when the run ends.
  const [neo4j, temporal] = [await privateNeo4j(), await privateTemporal()];
  cleanups.push({
    name: 'the private Neo4j and Temporal',
    run: () => Promise.all([neo4j.dispose(), temporal.dispose()]),
  });
  await Promise.all([neo4j.start(), temporal.start()]);
  const own = loadConfig({ ...process.env, ...neo4j.env, ...temporal.env });
  const driver = createDriver(own);
  cleanups.push({ name: 'the Neo4j driver', run: () => driver.close() });
  const graph = graphFromConfig(driver, own);
  await migrate(driver, own.NEO4J_DATABASE, { reportingCurrency: own.PERSONA_REPORTING_CURRENCY });
  const { connection, client } = await connectTemporal(own, {
    payloadCodec: payloadCodecFromConfig(own, graph, 'encode'),
  });
  cleanups.push({ name: 'the Temporal connection', run: () => connection.close() });
  const taskQueue = `contract-${randomUUID()}`;

  // The event relay delivers to this sink (it needs a subscriber to run at all); customer
  // notifications come here too, where an identity merge's consent codes are read.
  const consentCodes = new Map<string, string>();
  const sink = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/notify') {
        const n = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Notification;
        if (n.kind === 'merge_consent' && typeof n.data.code === 'string')
          consentCodes.set(`${String(n.data.merge_id)}/${n.customer_id}`, n.data.code);
      }
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  cleanups.push({ name: 'the event sink', run: () => sink.close() });
  const sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/events`;

  const env = {
    ...neo4j.env,
    ...temporal.env,
    TEMPORAL_TASK_QUEUE: taskQueue,
    PERSONA_EVENTS_WEBHOOK_URL: sinkUrl,
    PERSONA_NOTIFY_WEBHOOK_URL: sinkUrl.replace(/\/events$/, '/notify'),
    PERSONA_WAIT_TIMEOUT_MS: '5000',
    // Deadlines as generous as the other tests' (vitest.config.ts): CI shares two cores with Neo4j,
    // Temporal and the JVM, and a slow moment is not an outage. A context read once took longer than
    // the 1 s default on a loaded machine and answered 503, which the fuzzer rightly calls a server
    // error; what a deadline does is the outage test's to prove (test/integration/outages.test.ts).
    PERSONA_REQUEST_DEADLINE_MS: '10000',
    PERSONA_READ_DEADLINE_MS: '10000',
    // The seeded customer holds 62 cards (one to remove per removal the fuzzer may send), and the
    // fuzzer adds more: the wallet cap (20 by default; its own test is api-limits') must not make
    // every valid add a 409.
    PERSONA_MAX_PAYMENT_METHODS: '1000',
    // The erasure's token (the customer's own) carries the sign-in time it was minted with, and an
    // erasure needs one within this window (300 s by default; its own test is token-rules'). The
    // fuzzer reaches DELETE /customers/{id} when it reaches it: once past 300 s into the run on a
    // loaded machine, and every valid erasure answered 401, which the run rightly calls untested.
    PERSONA_RECENT_AUTH_SECONDS: '7200',
  };
  const worker = await startWorkerProcess(env);
  cleanups.push({ name: 'the worker', run: () => stopProcess(worker) });
  const api = await startApiProcess(env);
  cleanups.push({ name: 'the api', run: () => stopProcess(api) });

  // ---- seeded data ----------------------------------------------------------------------
  const customer = await createCustomer(graph, {
    segment: 'Subscriber',
    digital_identifiers: [{ type: 'email', value: uniqueEmail('contract'), is_verified: true }],
  });
  await addPaymentMethod(graph, customer.id, cardInput({ last_four: '1111' }), { makeDefault: true });
  // One card to remove per positive removal the fuzzer may send (hooks.py hands them out).
  const removable: string[] = [];
  for (let n = 0; n < 60; n++)
    removable.push((await addPaymentMethod(graph, customer.id, cardInput({ last_four: '2222' }))).id);
  const inactivate = await addPaymentMethod(graph, customer.id, cardInput({ last_four: '3333' }));
  const device = await linkDevice(graph, customer.id, { fingerprint: `fp-contract-${randomUUID()}` });
  const erased = await createCustomer(graph, { segment: 'New' });
  // Payment failures and fraud outcomes name their customer in the body (hooks.py fills them in).
  const payer = await createCustomer(graph, { segment: 'Subscriber' });
  const payerCard = await addPaymentMethod(graph, payer.id, cardInput({ token: 'tok_visa' }), { makeDefault: true });
  await addPaymentMethod(graph, payer.id, cardInput({ token: 'tok_mastercard', last_four: '4444' }));
  const suspect = await createCustomer(graph, { segment: 'Subscriber' });
  const suspectCard = await addPaymentMethod(graph, suspect.id, cardInput({ last_four: '5555' }));
  const suspectDevice = await linkDevice(graph, suspect.id, { fingerprint: `fp-suspect-${randomUUID()}` });

  const ops = await signToken(config.jwtSecret, 'ops', undefined, '2h');
  const call = async (method: string, url: string, body?: unknown) => {
    const res = await fetch(`${api.url}${url}`, {
      method,
      headers: { authorization: `Bearer ${ops}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json = (await res.json()) as Record<string, unknown>;
    if (res.status >= 300) throw new Error(`${method} ${url} answered ${res.status}: ${JSON.stringify(json)}`);
    return json;
  };
  const paymentId = `contract-${randomUUID()}`;
  await call('POST', '/api/v1/payment-failures', {
    payment_id: paymentId,
    customer_id: payer.id,
    payment_method_id: payerCard.id,
    amount: 1299,
    currency: 'EUR',
    decline_code: 'insufficient_funds',
  });
  // A recovery its owner stops (no longer owed): answered 200 the first time, and from the ledger after.
  const ownerStopPaymentId = `contract-${randomUUID()}`;
  await call('POST', '/api/v1/payment-failures', {
    payment_id: ownerStopPaymentId,
    customer_id: payer.id,
    payment_method_id: payerCard.id,
    amount: 499,
    currency: 'EUR',
    decline_code: 'insufficient_funds',
  });
  // A recovery that needs attention: its second card's token was revoked (the gateway refuses it as a request).
  const stuck = await createCustomer(graph, { segment: 'Subscriber' });
  const stuckCard = await addPaymentMethod(graph, stuck.id, cardInput({ token: 'tok_decline_insufficient_funds_s' }), {
    makeDefault: true,
  });
  await addPaymentMethod(graph, stuck.id, cardInput({ token: 'tok_revoked_s', last_four: '6666' }));
  const attentionPaymentId = `contract-${randomUUID()}`;
  await call('POST', '/api/v1/payment-failures', {
    payment_id: attentionPaymentId,
    customer_id: stuck.id,
    payment_method_id: stuckCard.id,
    amount: 1299,
    currency: 'EUR',
    decline_code: 'insufficient_funds',
  });
  // The attention it needs since: a decision names it (`since`), or it is refused as stale.
  let attentionSince = '';
  await until(async () => {
    const recovery = await call('GET', `/api/v1/payment-recoveries/${attentionPaymentId}`);
    attentionSince = (recovery.attention as { since?: string } | null)?.since ?? '';
    return recovery.state === 'needs_attention';
  }, 60_000);
  const outcomeId = `contract-${randomUUID()}`;
  await call('POST', '/api/v1/fraud-outcomes', {
    outcome_id: outcomeId,
    customer_id: suspect.id,
    outcome: 'account_takeover',
    device_id: suspectDevice.id,
  });
  await until(
    async () => (await call('GET', `/api/v1/fraud-outcomes/${outcomeId}`)).state === 'awaiting_review',
    60_000,
  );
  const scanId = (await call('POST', '/api/v1/admin/expiry-scan', { as_of: '2001-01-01', reason: 'the contract test' }))
    .workflow_id as string;
  // Identity merges: customers each with a verified email (consent is asked through it).
  const mergeable = () =>
    createCustomer(graph, {
      segment: 'New',
      digital_identifiers: [{ type: 'email', value: uniqueEmail(), is_verified: true }],
    });
  const [proposeSurvivor, proposeMerged] = [await mergeable(), await mergeable()];
  const propose = async (consent: boolean) => {
    const [survivor, merged] = [await mergeable(), await mergeable()];
    const r = await call('POST', '/api/v1/identity-merges', {
      survivor_id: survivor.id,
      merged_id: merged.id,
      consent,
    });
    const mergeId = r.merge_id as string;
    const state = consent ? 'awaiting_consent' : 'merged';
    await until(async () => (await call('GET', `/api/v1/identity-merges/${mergeId}`)).state === state, 60_000);
    return { mergeId, survivor: survivor.id };
  };
  const done = await propose(false);
  const toConfirm = await propose(true);
  const toDecline = await propose(true);
  const codeOf = (m: { mergeId: string; survivor: string }) => consentCodes.get(`${m.mergeId}/${m.survivor}`) ?? '';
  await ensureEventRelay(client, { ...own, TEMPORAL_TASK_QUEUE: taskQueue, PERSONA_EVENTS_WEBHOOK_URL: sinkUrl });
  // A feed cursor at Neo4j's now (the feed itself serves nothing younger than its lag yet).
  const { records } = await driver.executeQuery(
    'RETURN toString(datetime.realtime()) AS now',
    {},
    {
      database: own.NEO4J_DATABASE,
    },
  );
  const feedCursor = encodeCursor({ t: records[0]?.get('now') as string, s: -1, id: '' });
  const history = await call('GET', `/api/v1/customers/${customer.id}/events?limit=1`);

  // ---- the run --------------------------------------------------------------------------
  const stEnv: Record<string, string> = {
    PERSONA_CONTRACT_REPORT_DIR: reportDir,
    PERSONA_CONTRACT_OPS_TOKEN: ops,
    PERSONA_CONTRACT_SELF_TOKEN: await signToken(config.jwtSecret, 'self', customer.id, '2h'),
    PERSONA_CONTRACT_ERASE_TOKEN: await signToken(config.jwtSecret, 'self', erased.id, '2h'),
    PERSONA_CONTRACT_CUSTOMER_ID: customer.id,
    PERSONA_CONTRACT_ERASE_CUSTOMER_ID: erased.id,
    PERSONA_CONTRACT_REMOVABLE_PM_IDS: removable.join(','),
    PERSONA_CONTRACT_INACTIVATE_PM_ID: inactivate.id,
    PERSONA_CONTRACT_DEVICE_ID: device.id,
    PERSONA_CONTRACT_PAYMENT_ID: paymentId,
    PERSONA_CONTRACT_ATTENTION_PAYMENT_ID: attentionPaymentId,
    PERSONA_CONTRACT_ATTENTION_SINCE: attentionSince,
    PERSONA_CONTRACT_OWNER_STOP_PAYMENT_ID: ownerStopPaymentId,
    PERSONA_CONTRACT_OUTCOME_ID: outcomeId,
    PERSONA_CONTRACT_SCAN_ID: scanId,
    PERSONA_CONTRACT_FEED_CURSOR: feedCursor,
    PERSONA_CONTRACT_HISTORY_CURSOR: typeof history.next_cursor === 'string' ? history.next_cursor : '',
    // Bodies that name records (hooks.py): a payer with cards, a suspect with a card and a device.
    PERSONA_CONTRACT_PAYER_ID: payer.id,
    PERSONA_CONTRACT_PAYER_PM_ID: payerCard.id,
    PERSONA_CONTRACT_SUSPECT_ID: suspect.id,
    PERSONA_CONTRACT_SUSPECT_PM_ID: suspectCard.id,
    PERSONA_CONTRACT_SUSPECT_DEVICE_ID: suspectDevice.id,
    PERSONA_CONTRACT_PROPOSE_SURVIVOR_ID: proposeSurvivor.id,
    PERSONA_CONTRACT_PROPOSE_MERGED_ID: proposeMerged.id,
    PERSONA_CONTRACT_MERGE_ID: done.mergeId,
    PERSONA_CONTRACT_CONFIRM_MERGE_ID: toConfirm.mergeId,
    PERSONA_CONTRACT_CONFIRM_CUSTOMER_ID: toConfirm.survivor,
    PERSONA_CONTRACT_CONFIRM_CODE: codeOf(toConfirm),
    PERSONA_CONTRACT_DECLINE_MERGE_ID: toDecline.mergeId,
    PERSONA_CONTRACT_DECLINE_CUSTOMER_ID: toDecline.survivor,
    PERSONA_CONTRACT_DECLINE_CODE: codeOf(toDecline),
  };
  log(`schemathesis against ${api.url}/openapi.json, at least ${MIN_EXAMPLES} cases per operation`);
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn(
      st,
      ['--config-file', path.join(repoRoot, 'test', 'contract', 'schemathesis.toml'), 'run', `${api.url}/openapi.json`],
      {
        cwd: repoRoot,
        // Hypothesis keeps its example database out of the working tree.
        env: {
          ...process.env,
          ...stEnv,
          NO_COLOR: '1',
          HYPOTHESIS_STORAGE_DIRECTORY: path.join(reportDir, 'hypothesis'),
        },
        stdio: 'inherit',
      },
    );
    const timer = setTimeout(() => {
      log(`no result after ${TIME_LIMIT_MS / 60_000} minutes: stopping schemathesis`);
      child.kill('SIGTERM');
    }, TIME_LIMIT_MS);
    child.on('error', reject);
    child.on('exit', (exitCode, signal) => {
      clearTimeout(timer);
      resolve(exitCode ?? (signal ? 128 : 1));
    });
  });

  // ---- what it did ----------------------------------------------------------------------
  const ndjson = readdirSync(reportDir).find((f) => f.endsWith('.ndjson'));
  const operations = ndjson ? summarise(readFileSync(path.join(reportDir, ndjson), 'utf8')) : new Map();
  const served = (await (await fetch(`${api.url}/openapi.json`)).json()) as { paths: Record<string, object> };
  const expected = Object.entries(served.paths).flatMap(([p, methods]) =>
    Object.keys(methods).map((m) => `${m.toUpperCase()} ${p}`),
  );
  log('operation                                                 cases  valid 2xx  statuses');
  const thin: string[] = [];
  const refused: string[] = [];
  for (const label of expected) {
    const s = operations.get(label);
    const statuses = s ? [...s.statuses].sort(([a], [b]) => a - b).map(([k, n]) => `${k}×${n}`) : [];
    const counts = `${String(s?.cases ?? 0).padStart(5)}  ${String(s?.accepted ?? 0).padStart(9)}`;
    log(`${label.padEnd(57)} ${counts}  ${statuses.join(' ')}`);
    if ((s?.cases ?? 0) < MIN_EXAMPLES) thin.push(`${label} (${s?.cases ?? 0})`);
    if ((s?.accepted ?? 0) === 0) refused.push(label);
  }
  if (thin.length > 0) log(`fewer than ${MIN_EXAMPLES} cases: ${thin.join(', ')}`);
  if (refused.length > 0) log(`no valid request answered 2xx: ${refused.join(', ')}`);
  log(`reports in ${reportDir} (kept when the run is not clean)`);
  const serverErrors = api
    .output()
    .split('\n')
    .filter((l) => l.includes('"level":50'));
  if (serverErrors.length > 0) log(`the api logged ${serverErrors.length} error lines, e.g.\n${serverErrors[0]}`);
  if (code !== 0) log(`schemathesis exited ${code}: see its findings above`);
  const clean = code === 0 && thin.length === 0 && refused.length === 0 && serverErrors.length === 0;
  if (clean && process.env.PERSONA_CONTRACT_KEEP_REPORTS !== '1')
    cleanups.push({ name: 'the reports', run: () => rmSync(reportDir, { recursive: true, force: true }) });
  return clean ? 0 : 1;
}

void main()
  .catch((err: unknown) => {
    console.error(`[contract] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return 1;
  })
  .then(async (code) => {
    await cleanUp();
    process.exit(code);
  });
