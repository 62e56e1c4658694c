/**
 * What the fleet must have done, held against records that are not its own: the gateway
 * simulator's charges (money moved once), the events topic read from its start as an outside
 * consumer would (each customer's sequence whole, once), Temporal's own view of every workflow the
 * fleet accepted (finished, or waiting where ops see it), and the clients' ledger of consistency
 * tokens (test/fleet/load.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowNotFoundError } from '@temporalio/client';
import { KAFKA_HEADERS } from '../../clients/kafka';
import { openEvent, type PublishedEvent } from '../../graph/eventCipher';
import { graphHistoryKeys } from '../../graph/historyKeys';
import { connectTemporal } from '../../temporal/connection';
import { payloadCodecFromConfig } from '../../temporal/payloadCodec';
import { recoveryWorkflowId } from '../../temporal/recovery';
import type { onboardingWorkflow } from '../../workflows/onboarding';
import { readTopic, type Msg } from '../support/kafka';
import { simulatorCharges } from '../support/recovery';
import type { FleetClient } from './client';
import type { Fleet } from './fleet';
import type { Ledger, Population } from './load';

/** Recovery states that wait where ops see them (the console, the needs-attention metric). */
export const VISIBLY_WAITING = new Set(['needs_attention', 'dunning']);

export interface WorkflowOutcome {
  kind: string;
  id: string;
  status: string;
  /** A recovery's state, from its status query. */
  state?: string;
  /** The customer a completed onboarding wrote (created or matched). */
  customerId?: string;
}

/**
 * Waits until every accepted workflow has finished or (a recovery) waits visibly, up to
 * `withinMs`; answers each one's last status.
 */
export async function settleWorkflows(
  fleet: Fleet,
  client: FleetClient,
  ledger: Ledger,
  withinMs: number,
): Promise<WorkflowOutcome[]> {
  const { connection, client: temporal } = await connectTemporal(fleet.temporal.env, {
    payloadCodec: payloadCodecFromConfig(fleet.config, fleet.graph, 'encode'),
  });
  const deadline = Date.now() + withinMs;
  try {
    // A report the client gave up on (503, no answer) whose start reached Temporal all the same is
    // held to what an accepted one is: finished or visibly waiting, recovered exactly when charged.
    for (const r of ledger.refused) {
      if (r.kind !== 'recovery' || !r.key) continue;
      const id = recoveryWorkflowId(r.key);
      try {
        await temporal.workflow.getHandle(id).describe();
        ledger.workflows.push({ kind: 'recovery', id, key: r.key });
        ledger.startedInDoubt.push(r.key);
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
    }
    for (;;) {
      const outcomes: WorkflowOutcome[] = [];
      for (const w of ledger.workflows) {
        const d = await temporal.workflow.getHandle(w.id).describe();
        const o: WorkflowOutcome = { kind: w.kind, id: w.id, status: d.status.name };
        if (w.kind === 'recovery') {
          const a = await client.once(
            'recovery status',
            'by customer',
            fleet.byCustomer,
            'GET',
            `/api/v1/payment-recoveries/${w.key}`,
          );
          o.state = typeof a.body.state === 'string' ? a.body.state : `HTTP ${a.status}`;
        }
        outcomes.push(o);
      }
      const open = outcomes.filter((o) => o.status === 'RUNNING' && !VISIBLY_WAITING.has(o.state ?? ''));
      if (open.length === 0 || Date.now() > deadline) {
        // Whom each completed onboarding wrote: their events are held to the topic too.
        for (const o of outcomes.filter((x) => x.kind === 'onboarding' && x.status === 'COMPLETED'))
          o.customerId = (await temporal.workflow.getHandle<typeof onboardingWorkflow>(o.id).result()).customer_id;
        return outcomes;
      }
      await sleep(1000);
    }
  } finally {
    await connection.close();
  }
}

/**
 * Every successful charge the gateway made for each recovery: at most one per payment. A report the
 * client gave up on (503 or no answer to its last retry) is in doubt, as for any caller: its start
 * may have reached Temporal after the api stopped waiting, so its payment may be charged — once, by
 * the recovery `settleWorkflows` found for it. Run after `settleWorkflows`.
 */
export async function chargesPerPayment(fleet: Fleet, pop: Population, ledger: Ledger) {
  // Every recovery Temporal has: those answered 202 and those started though the client gave up.
  const payments = new Set(ledger.workflows.filter((w) => w.kind === 'recovery').map((w) => w.key));
  const succeeded = new Map<string, number>();
  /** Successful charges of a debtor under no recovery Temporal has. */
  const unknown: string[] = [];
  let charges = 0;
  for (const d of pop.debtors)
    for (const c of await simulatorCharges(fleet.config.PERSONA_GATEWAY_URL, d.id)) {
      charges++;
      const payment = c.idempotency_key.split(':')[0] as string;
      if (c.status !== 'succeeded') continue;
      if (!payments.has(payment))
        unknown.push(`${d.id}: a successful charge under ${c.idempotency_key}, no recovery's`);
      else succeeded.set(payment, (succeeded.get(payment) ?? 0) + 1);
    }
  const twice = [...succeeded].filter(([, n]) => n > 1).map(([p, n]) => `${p}: ${n} successful charges`);
  /** Payments reported, never answered 202, and charged all the same (once). */
  const chargedInDoubt = ledger.startedInDoubt.filter((p) => succeeded.has(p)).length;
  return { payments: payments.size, charges, charged: succeeded.size, twice, succeeded, unknown, chargedInDoubt };
}

/**
 * Reads the events topic from its start until every customer the fleet touched has as many
 * distinct events on it as the graph numbered for them (up to `withinMs`), then checks each
 * customer's sequence: 1…n, each number once (a message sent again has the same event id: at least
 * once is the publisher's contract), nothing the graph did not number.
 */
export async function eventsOnKafka(fleet: Fleet, customers: string[], withinMs: number) {
  const keys = graphHistoryKeys(fleet.graph, fleet.config.payloadKeys, { maxEntries: 0, ttlMs: 0, decodes: false });
  /** How many events the graph numbered for each customer, now. */
  const numberedNow = async () => {
    const res = await fleet.graph.driver.executeQuery(
      'MATCH (c:Customer) WHERE c.id IN $ids RETURN c.id AS id, coalesce(c.event_seq, 0) AS seq',
      { ids: customers },
      { database: fleet.graph.database },
    );
    return new Map(res.records.map((r) => [r.get('id') as string, Number(r.get('seq'))]));
  };
  const numbered = await numberedNow();
  const messages: Msg[] = [];
  const reader = await readTopic(
    { kafkaBrokers: fleet.kafka.brokers },
    fleet.config.PERSONA_KAFKA_EVENTS_TOPIC,
    messages,
  );
  const bySeq = new Map<string, Map<number, string>>();
  const problems: string[] = [];
  let read = 0;
  let resent = 0;
  const deadline = Date.now() + withinMs;
  try {
    for (;;) {
      for (; read < messages.length; read++) {
        const m = messages[read] as Msg;
        const want = numbered.get(m.key);
        if (want === undefined) continue;
        const event = await openEvent(keys, JSON.parse(m.value) as PublishedEvent);
        const seq = event.customer_seq ?? 0;
        const seqs = bySeq.get(m.key) ?? new Map<number, string>();
        bySeq.set(m.key, seqs);
        const had = seqs.get(seq);
        if (had === event.id) resent++;
        else if (had) problems.push(`${m.key}: customer_seq ${seq} is two events (${had}, ${event.id})`);
        else seqs.set(seq, event.id);
        if (m.headers.get(KAFKA_HEADERS.eventId) !== event.id) problems.push(`${m.key}: a header names another event`);
      }
      const behind = [...numbered].filter(([id, n]) => (bySeq.get(id)?.size ?? 0) < n);
      if (behind.length === 0 || Date.now() > deadline) {
        for (const [id, n] of behind)
          problems.push(`${id}: ${bySeq.get(id)?.size ?? 0} of its ${n} events on the topic`);
        break;
      }
      await sleep(500);
    }
  } finally {
    await reader.stop();
  }
  // Numbered again: a workflow that ended its work after the first count (a late notification's
  // event) may have numbered one more, which is on the topic and is no problem.
  const numberedAtEnd = await numberedNow();
  for (const [id, seqs] of bySeq) {
    const n = numberedAtEnd.get(id) ?? 0;
    for (const seq of seqs.keys()) if (seq < 1 || seq > n) problems.push(`${id}: customer_seq ${seq} of ${n}`);
  }
  const events = [...bySeq.values()].reduce((sum, s) => sum + s.size, 0);
  return { customers: numbered.size, events, messages: messages.length, resent, problems };
}
