/**
 * End to end: cards at known distances from an `as_of` day, a scan started through the api and
 * run by a real worker on the real Temporal and Neo4j, and exactly the events it must write —
 * then a second trigger that writes none. The day is long past (2001), so no other data is due.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowNotFoundError } from '@temporalio/client';
import { getPaymentMethodsByCustomer } from '../../graph';
import type { ExpiryScanProgress } from '../../temporal/expiry';
import { startHarness, type Harness } from '../support/api';
import { send } from '../support/http';
import { expiryEvents, holderOfCard, type CardHolder } from '../support/expiry';

const AS_OF = '2001-01-31';

let h: Harness;
let ops: string;
beforeAll(async () => {
  h = await startHarness();
  ops = await h.token('ops', 'ops-expiry-test');
  // A scan for the same day left running by an interrupted earlier run would be reused.
  try {
    await h.client.workflow.getHandle(`expiry-scan-${AS_OF}`).terminate('test set-up');
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError) && !/already completed|not running/i.test(String(err))) throw err;
  }
});
afterAll(() => h?.close());

const REASON = 'the test scans as of a day of its own';
/** A scan on demand: with a reason unless the body says otherwise. */
const post = (body: Record<string, unknown>, token = ops) =>
  send(h.app, 'POST', '/api/v1/admin/expiry-scan', { token, body: { reason: REASON, ...body }, read: 'text' });

describe('POST /api/v1/admin/expiry-scan', () => {
  it('refuses a token without ops, and a day that is not a date, starting nothing', async () => {
    const notOps = await post({ as_of: AS_OF }, await h.token('customers:read customers:write events:read'));
    expect(notOps.status).toBe(403);
    for (const as_of of ['2001-02-29', '31/01/2001', '2001-1-31']) {
      const res = await post({ as_of });
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(res.json).toMatchObject({ field: 'as_of' });
    }
    const unknown = await post({ as_of: AS_OF, dry_run: true });
    expect(unknown.status).toBe(400);
    expect(unknown.json).toMatchObject({ field: 'dry_run' });
  });

  it(
    'warns exactly the due default cards, expires exactly the past ones, ' + 'and a second trigger adds nothing',
    async () => {
      // As of 2001-01-31: January ends today, February in 28 days, March in 59, April in 89.
      const warn7 = await holderOfCard(h.graph, 2001, 1);
      const warn30 = await holderOfCard(h.graph, 2001, 2);
      const warn60 = await holderOfCard(h.graph, 2001, 3);
      const notYet = await holderOfCard(h.graph, 2001, 4);
      const dueButNotDefault = await holderOfCard(h.graph, 2001, 2, { isDefault: false });
      const expiredLastMonth = await holderOfCard(h.graph, 2000, 12); // December → January
      const expiredNotDefault = await holderOfCard(h.graph, 2000, 2, { isDefault: false }); // leap-year February
      const all: CardHolder[] = [warn7, warn30, warn60, notYet, dueButNotDefault, expiredLastMonth, expiredNotDefault];

      const first = await post({ as_of: AS_OF });
      expect(first.status).toBe(202);
      const { workflow_id } = first.json as { workflow_id: string };
      expect(workflow_id).toBe(`expiry-scan-${AS_OF}`);
      const handle = h.client.workflow.getHandle(workflow_id);
      const progress = (await handle.result()) as ExpiryScanProgress;
      expect(progress).toMatchObject({ as_of: AS_OF, state: 'done' });
      // What ops read in the Temporal UI: the summary, and the scan's details in words.
      expect(await (await handle.describe()).staticSummary()).toMatch(
        /^Card-expiry scan as of 2001-01-31, started on demand/,
      );
      const metadata = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
      expect(metadata.currentDetails).toContain('**Card-expiry scan as of 2001-01-31** — done');
      expect(metadata.currentDetails).toMatch(/marked expired: \d+/);
      expect(progress.scanned).toBeGreaterThanOrEqual(6);

      const events = await expiryEvents(h.graph, all);
      const warnings = events
        .filter((e) => e.type === 'CustomerNotified')
        .map((e): Record<string, unknown> => ({ customer_id: e.customer_id, ...e.payload }))
        .sort((a, b) => Number(a.stage_days) - Number(b.stage_days));
      expect(warnings).toEqual([
        {
          customer_id: warn7.customerId,
          kind: 'card_expiring',
          channel: 'email',
          payment_method_id: warn7.cardId,
          stage_days: 7,
          expires: '2001-01',
        },
        {
          customer_id: warn30.customerId,
          kind: 'card_expiring',
          channel: 'email',
          payment_method_id: warn30.cardId,
          stage_days: 30,
          expires: '2001-02',
        },
        {
          customer_id: warn60.customerId,
          kind: 'card_expiring',
          channel: 'email',
          payment_method_id: warn60.cardId,
          stage_days: 60,
          expires: '2001-03',
        },
      ]);
      const changes = events
        .filter((e) => e.type === 'PaymentMethodStatusChanged')
        .map((e) => ({
          customer_id: e.customer_id,
          payment_method_id: e.payload.payment_method_id,
          from: e.payload.from,
          to: e.payload.to,
        }));
      expect(changes).toEqual(
        expect.arrayContaining([
          {
            customer_id: expiredLastMonth.customerId,
            payment_method_id: expiredLastMonth.cardId,
            from: 'active',
            to: 'expired',
          },
          {
            customer_id: expiredNotDefault.customerId,
            payment_method_id: expiredNotDefault.cardId,
            from: 'active',
            to: 'expired',
          },
        ]),
      );
      expect(changes).toHaveLength(2);
      const wallet = await getPaymentMethodsByCustomer(h.graph, expiredNotDefault.customerId);
      expect(wallet.find((pm) => pm.id === expiredNotDefault.cardId)?.status).toBe('expired');
      expect(wallet.find((pm) => pm.id !== expiredNotDefault.cardId)?.status).toBe('active');

      // The progress route reads the finished scan.
      const read = await h.app.request(`/api/v1/admin/expiry-scans/${workflow_id}`, {
        headers: { authorization: `Bearer ${ops}` },
      });
      expect(read.status).toBe(200);
      expect(await read.json()).toMatchObject({
        as_of: AS_OF,
        state: 'done',
        scanned: progress.scanned,
        expired: progress.expired,
      });

      // Trigger again (twice at once): one new run, and it finds everything done.
      const [again, same] = await Promise.all([post({ as_of: AS_OF }), post({ as_of: AS_OF })]);
      expect([again.status, same.status]).toEqual([202, 202]);
      expect((again.json as { workflow_id: string }).workflow_id).toBe(workflow_id);
      expect((same.json as { workflow_id: string }).workflow_id).toBe(workflow_id);
      const rerun = (await h.client.workflow.getHandle(workflow_id).result()) as ExpiryScanProgress;
      expect(rerun).toMatchObject({ state: 'done', expired: 0, notified: { '60': 0, '30': 0, '7': 0 } });
      expect(rerun.already_notified).toBeGreaterThanOrEqual(3);
      expect(await expiryEvents(h.graph, all)).toHaveLength(events.length);
    },
  );

  it('refuses a day after today in the scan’s time zone, or no reason, starting nothing', async () => {
    // As of tomorrow, on a month's last day, every card of this month would be expired a day early.
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    for (const as_of of ['2999-12-31', tomorrow]) {
      const asked = Date.now();
      const res = await post({ as_of });
      expect(res.status).toBe(400);
      expect(res.json).toMatchObject({ field: 'as_of' });
      expect(String(res.json.detail)).toContain('would expire cards that are still valid');
      // Nothing started by this request (a scan of that day may exist from an earlier run of the suite).
      const started = await h.client.workflow
        .getHandle(`expiry-scan-${as_of}`)
        .describe()
        .then(
          (d) => d.startTime.getTime(),
          (err: unknown) => {
            if (err instanceof WorkflowNotFoundError) return 0;
            throw err;
          },
        );
      expect(started).toBeLessThan(asked);
    }
    for (const body of [{ reason: undefined }, { reason: '   ' }]) {
      const res = await post({ as_of: AS_OF, ...body });
      expect(res.status).toBe(400);
      expect(res.json).toMatchObject({ field: 'reason' });
    }
  });

  it('keeps who started a scan and why: in its answer, its progress and its summary', async () => {
    const res = await post({ as_of: '1990-06-15', reason: 'the daily scan missed the 15th' });
    expect(res.status).toBe(202);
    expect(res.json).toMatchObject({ reason: 'the daily scan missed the 15th', requested_by: 'ops-expiry-test' });
    const handle = h.client.workflow.getHandle(String(res.json.workflow_id));
    const progress = (await handle.result()) as ExpiryScanProgress;
    expect(progress.requested).toEqual({ by: 'ops-expiry-test', reason: 'the daily scan missed the 15th' });
    expect(await (await handle.describe()).staticSummary()).toContain(
      'started on demand by ops-expiry-test (the daily scan missed the 15th)',
    );
  });

  it('scans as of today when no day is given', async () => {
    const res = await post({});
    expect(res.status).toBe(202);
    const body = res.json as { workflow_id: string; as_of: string };
    expect(body.as_of).toBe(new Date().toISOString().slice(0, 10));
    expect(body.workflow_id).toBe(`expiry-scan-${body.as_of}`);
    // Only start it here: on a large local graph today's scan has real work to do.
    await h.client.workflow.getHandle(body.workflow_id).terminate('the test only checks how it starts');
  });

  it('answers 404 for a scan that does not exist', async () => {
    const res = await h.app.request('/api/v1/admin/expiry-scans/expiry-scan-1999-01-01', {
      headers: { authorization: `Bearer ${ops}` },
    });
    expect(res.status).toBe(404);
  });
});
