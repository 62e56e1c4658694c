/**
 * Ops' one command after a gateway outage (`npm run ops:retry-recoveries`, temporal/batchRetry.ts),
 * on the dev server with the real recovery, the real activities and a gateway simulator of this
 * file's own: while the gateway answers 503 to some customers' charges (one of them after it has
 * charged), their recoveries retry until `chargeRetryFor` is spent and wait for ops with
 * `charge_unknown`; another recovery, whose card declines, goes to dunning. Once the gateway is
 * back, one batch operation over the search attributes tells every blocked recovery to retry:
 * each recovers with one charge at the gateway, and the other is left alone. And ops' own answer
 * over REST applies only to the attention it names (`since`): a stale one is refused, and the same
 * one sent again is answered as the first was.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { serve, type ServerType } from '@hono/node-server';
import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportPaymentFailure } from '../../api/services/recovery';
import { repoRoot } from '../../config/env';
import { readRecoveryLedger } from '../../graph/chargeLedger';
import { loadRuleTable } from '../../payments/ruleTables';
import { createGatewaySimulator } from '../../simulators/gateway/app';
import {
  batchSucceeded,
  blockedRecoveriesQuery,
  countMatching,
  startRetryBatch,
  waitForBatch,
  type BatchProgress,
} from '../../temporal/batchRetry';
import {
  recoveryStatusQuery,
  recoveryWorkflowId,
  retryAttentionSignal,
  type PaymentFailure,
  type RecoveryStatus,
} from '../../temporal/recovery';
import { personaAttentionReason, personaRecoveryState } from '../../temporal/searchAttributes';
import { startHarness, type Harness } from '../support/api';
import { cardIdentity, customerWithCards, paymentId, simulatorCharges } from '../support/recovery';
import { send } from '../support/http';
import { until } from '../support/wait';

/** Short, so a recovery gives up on the gateway within seconds (the default is hours). */
const CHARGE_RETRY_FOR = '6s';
const BLOCKED = 3;

let h: Harness;
let server: ServerType;
let gatewayUrl: string;
/** Customers whose charges the gateway fails while it is down. */
const outage = {
  down: true,
  customers: new Set<string>(),
  /** The card whose first charge the gateway makes before answering 503. */
  commitFirst: '',
  failedAfterCommit: new Set<string>(),
};
const previousGatewayUrl = process.env.PERSONA_GATEWAY_URL;

beforeAll(async () => {
  // The simulator's fault hook, asked for each charge request that would make or replay a charge.
  const app = createGatewaySimulator(
    path.join(mkdtempSync(path.join(tmpdir(), 'batch-retry-')), 'charges.jsonl'),
    loadRuleTable(),
    {
      fault: ({ customer_id, idempotency_key }) => {
        if (!outage.down || !outage.customers.has(customer_id)) return null;
        // One customer's first charge goes through before the 503: only a retry under the same key finds it.
        if (idempotency_key.endsWith(`:${outage.commitFirst}`) && !outage.failedAfterCommit.has(idempotency_key)) {
          outage.failedAfterCommit.add(idempotency_key);
          return { kind: 'fail_after_commit' };
        }
        return { kind: 'fail_before' };
      },
    },
  );
  await new Promise<void>((resolve) => {
    server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve());
  });
  gatewayUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // The harness's worker charges, and asks the account updater, at this file's simulator.
  process.env.PERSONA_GATEWAY_URL = gatewayUrl;
  h = await startHarness();
});

afterAll(async () => {
  await h?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  if (previousGatewayUrl === undefined) delete process.env.PERSONA_GATEWAY_URL;
  else process.env.PERSONA_GATEWAY_URL = previousGatewayUrl;
});

/** Reports the failure as the api does (ledger reservation, then signal-with-start), retrying charges briefly. */
async function report(customerId: string, card: string): Promise<{ payment: string; handle: WorkflowHandle }> {
  const payment = paymentId();
  const failure: PaymentFailure = {
    payment_id: payment,
    customer_id: customerId,
    payment_method_id: card,
    amount: 2599,
    currency: 'USD',
    decline_code: 'insufficient_funds',
  };
  await reportPaymentFailure(
    { ...h.deps, recovery: { ...h.deps.recovery, chargeRetryFor: CHARGE_RETRY_FOR } },
    failure,
  );
  return { payment, handle: h.client.workflow.getHandle(recoveryWorkflowId(payment)) };
}

const status = (handle: WorkflowHandle) => handle.query(recoveryStatusQuery);
const card = (suffix = '') => `tok_visa_card-${cardIdentity()}${suffix}`;

/** `npm run ops:retry-recoveries -- <args>`, as ops run it: its exit code and what it printed. */
async function script(...args: string[]): Promise<{ code: number; out: string }> {
  const run = promisify(execFile);
  const entry = path.join(repoRoot, 'scripts', 'retry-recoveries.ts');
  return run(process.execPath, ['--import', 'tsx', entry, ...args], { cwd: repoRoot, env: process.env }).then(
    ({ stdout, stderr }) => ({ code: 0, out: stdout + stderr }),
    (err: { code?: number; stdout?: string; stderr?: string }) => ({
      code: err.code ?? -1,
      out: `${err.stdout ?? ''}${err.stderr ?? ''}`,
    }),
  );
}

/** The signals a workflow received, by name, with who sent them. */
async function signals(handle: WorkflowHandle): Promise<{ name: string; identity: string }[]> {
  const { events } = await handle.fetchHistory();
  return (events ?? [])
    .map((e) => e.workflowExecutionSignaledEventAttributes)
    .filter((a) => !!a)
    .map((a) => ({ name: a.signalName ?? '', identity: a.identity ?? '' }));
}

describe('after a gateway outage, ops retry every blocked recovery with one command', () => {
  it(
    'signals each recovery waiting with charge_unknown once: each recovers with one charge, the rest ' +
      'are untouched',
    async () => {
      const service = h.client.connection.workflowService;
      const namespace = h.client.options.namespace;
      const query = blockedRecoveriesQuery('charge_unknown', { taskQueue: h.taskQueue });

      // Recoveries whose cascade charges the second card while the gateway is down for them.
      const blocked: { customerId: string; cards: string[]; payment: string; handle: WorkflowHandle }[] = [];
      for (let i = 0; i < BLOCKED; i++) {
        const { customerId, cards } = await customerWithCards(h.graph, [card('_decline_insufficient_funds'), card()]);
        outage.customers.add(customerId);
        if (i === 0) outage.commitFirst = cards[1] as string;
        blocked.push({ customerId, cards, ...(await report(customerId, cards[0] as string)) });
      }
      // And one whose only card declines (the gateway answers it): it goes to dunning.
      const other = await customerWithCards(h.graph, [card('_decline_insufficient_funds')]);
      const dunning = await report(other.customerId, other.cards[0] as string);

      // Every charge the gateway failed is retried for CHARGE_RETRY_FOR, then ops are asked.
      for (const b of blocked)
        await until(async () => (await status(b.handle)).attention?.kind === 'charge_unknown', 60_000);
      await until(async () => (await status(dunning.handle)).state === 'dunning', 60_000);
      // What ops see: the recoveries carry their state and reason, and the batch's query finds them.
      for (const b of blocked) {
        const { typedSearchAttributes: sa } = await b.handle.describe();
        expect(sa.get(personaRecoveryState)).toBe('needs_attention');
        expect(sa.get(personaAttentionReason)).toBe('charge_unknown');
      }
      await until(async () => (await countMatching(service, namespace, query)) === BLOCKED);
      const { typedSearchAttributes: otherSa } = await dunning.handle.describe();
      expect(otherSa.get(personaRecoveryState)).toBe('dunning');
      expect(otherSa.get(personaAttentionReason)).toBeUndefined();
      // The command's dry run counts them (and the namespace's others, if any), and sends nothing.
      const dry = await script('--dry-run');
      expect(dry.code, dry.out).toBe(0);
      expect(
        Number(/\[retry\] (\d+) recoveries wait for ops with charge_unknown/.exec(dry.out)?.[1]),
      ).toBeGreaterThanOrEqual(BLOCKED);
      expect(dry.out).toContain('dry run: nothing sent');
      const refused = await script('--reason', 'graph_restored');
      expect(refused).toMatchObject({ code: 1, out: expect.stringContaining('not retried in a batch') });
      // Nothing was charged twice meanwhile: one customer's charge went through before its 503.
      const succeeded = async (customerId: string) =>
        (await simulatorCharges(gatewayUrl, customerId)).filter((c) => c.status === 'succeeded');
      expect(outage.failedAfterCommit.size).toBe(1);
      expect(await succeeded(blocked[0]!.customerId)).toHaveLength(1);

      // The gateway is back; ops run the batch.
      outage.down = false;
      const seen: BatchProgress[] = [];
      const jobId = await startRetryBatch(service, {
        namespace,
        reason: 'charge_unknown',
        reasonText: 'batch-retry.test: gateway back',
        identity: 'batch-retry.test',
        taskQueue: h.taskQueue,
      });
      const done = await waitForBatch(service, namespace, jobId, { pollMs: 200, onProgress: (p) => seen.push(p) });
      expect(done).toMatchObject({ state: 'completed', total: BLOCKED, complete: BLOCKED, failed: 0 });
      expect(batchSucceeded(done)).toBe(true);
      expect(seen.at(-1)).toEqual(done);

      for (const b of blocked) {
        const result = (await b.handle.result()) as RecoveryStatus;
        expect(result, b.payment).toMatchObject({ state: 'recovered', recovered_with: b.cards[1], attention: null });
        // Exactly one charge at the gateway, under the recovery's key for that card, and the ledger agrees.
        const charges = await succeeded(b.customerId);
        expect(charges).toMatchObject([{ idempotency_key: `${b.payment}:${b.cards[1]}`, amount: 2599 }]);
        const ledger = await readRecoveryLedger(h.graph, b.payment);
        expect(ledger?.recovery).toMatchObject({ state: 'recovered', recovered_with: b.cards[1] });
        expect(ledger?.recovery.charge_id).toBe(charges[0]?.id);
        // The batch's signal, sent once, without input; the search attributes followed.
        expect((await signals(b.handle)).filter((s) => s.name === retryAttentionSignal.name)).toEqual([
          { name: retryAttentionSignal.name, identity: 'batch-retry.test' },
        ]);
        const { typedSearchAttributes: sa } = await b.handle.describe();
        expect(sa.get(personaRecoveryState)).toBe('recovered');
        expect(sa.get(personaAttentionReason)).toBeUndefined();
      }
      await until(async () => (await countMatching(service, namespace, query)) === 0);

      // The recovery that did not wait for ops got nothing and goes on dunning.
      expect((await signals(dunning.handle)).map((s) => s.name)).not.toContain(retryAttentionSignal.name);
      expect(await status(dunning.handle)).toMatchObject({ state: 'dunning', attention: null });
      expect(await succeeded(other.customerId)).toEqual([]);
      await dunning.handle.terminate('batch-retry.test is over');
    },
    180_000,
  );

  it('takes ops’ REST answer for the attention it names: a stale one refused, a resent one answered', async () => {
    outage.down = true;
    // The reported card declines; the other is charged while the gateway is down for this customer.
    const { customerId, cards } = await customerWithCards(h.graph, [card('_decline_insufficient_funds'), card()]);
    outage.customers.add(customerId);
    const { payment, handle } = await report(customerId, cards[0] as string);
    await until(async () => (await status(handle)).attention?.kind === 'charge_unknown', 60_000);
    const waiting = await status(handle);
    const route = `/api/v1/payment-recoveries/${payment}/attention`;
    // An ops with a subject: a resend is told apart from another caller's decision by it.
    const ops = await h.token('ops', 'ops-on-call');

    // A decision made on an earlier screen (another attention's `since`) is refused, not applied.
    const stale = await send(h.app, 'POST', route, {
      token: ops,
      body: { action: 'skip', since: '2001-01-01T00:00:00Z' },
    });
    expect(stale.status).toBe(409);
    expect(JSON.stringify(stale.json)).toContain(waiting.attention?.since);
    expect(await status(handle)).toMatchObject({ state: 'needs_attention', attention: waiting.attention });

    // The decision on this attention is taken: the gateway is back, the charge retried once.
    outage.down = false;
    const taken = await send<RecoveryStatus>(h.app, 'POST', route, {
      token: ops,
      body: { action: 'retry', since: waiting.attention?.since },
    });
    expect(taken.status).toBe(200);
    expect(await handle.result()).toMatchObject({ state: 'recovered', recovered_with: cards[1] });
    // The same decision sent again by the same ops (their answer lost) is told what was decided;
    // the same words from another ops are refused: the recovery was answered, and has ended.
    const decision = { action: 'retry', since: waiting.attention?.since };
    const again = await send<RecoveryStatus>(h.app, 'POST', route, { token: ops, body: decision });
    expect(again.status).toBe(200);
    expect(again.json).toEqual(taken.json);
    const other = await send(h.app, 'POST', route, { token: await h.token('ops', 'another-ops'), body: decision });
    expect(other.status).toBe(409);
    const charges = await simulatorCharges(gatewayUrl, customerId);
    expect(charges.filter((c) => c.status === 'succeeded')).toHaveLength(1);
  });
});
