/**
 * The recovery's dunning against the card networks' rules, as a property: random sequences of
 * declines (Mastercard advice codes, Visa categories) and random schedules run through the
 * workflow on the time-skipping server, with stand-in activities that keep one card's history
 * and ask the real governor (payments/networkRules.ts) on the real rule table, as the graph does.
 *
 * Checked for every charge: the rules allowed it at the time it was made (no violation: the
 * workflow never scheduled it too early), and it came at exactly the round's time — the later of
 * the schedule and the earliest time the rules allowed, as the governor forecast it when the
 * round was scheduled — give or take the moments a workflow task takes.
 */
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ChargeAttempt, ChargeForecast, ChargeOutcome } from '../../activities/recovery';
import { decideRetry, describeVerdict, type CardAttempt, type RetryVerdict } from '../../payments/networkRules';
import { loadRuleTable } from '../../payments/ruleTables';
import { decideDecline } from '../../payments/declines';
import { paymentFailedSignal, type PaymentFailure, type RecoveryStatus } from '../../temporal/recovery';
import { paymentRecoveryWorkflow } from '../../workflows';
import { NO_OPEN_PROCESS_SINKS, useWorkflowTestEnv } from '../support/temporal';

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleWithSourceMap;
useWorkflowTestEnv((e, b) => {
  env = e;
  bundle = b;
});

const table = loadRuleTable();
const DELAYS = { '1h': 3_600_000, '6h': 21_600_000, '1d': 86_400_000, '2d': 172_800_000 } as const;
type Delay = keyof typeof DELAYS;
/** What a task of a workflow may take after its timer fired, on a busy machine (real time). */
const TASK_SLACK_MS = 60_000;

type Answer = Omit<CardAttempt, 'at' | 'network'> & { outcome: 'succeeded' | 'declined' };

const mastercardDecline: fc.Arbitrary<Answer> = fc.record({
  outcome: fc.constant('declined' as const),
  decline_code: fc.constantFrom('do_not_honor', 'insufficient_funds', 'try_again_later'),
  category: fc.constant(null),
  advice_code: fc.constantFrom(null, '01', '02', '03', '21', '24', '25', '26', '27', '28', '29', '30'),
});
const visaDecline: fc.Arbitrary<Answer> = fc.record({
  outcome: fc.constant('declined' as const),
  decline_code: fc.constantFrom('do_not_honor', 'insufficient_funds', 'generic_decline'),
  category: fc.constantFrom(1, 2, 3, 4),
  advice_code: fc.constant(null),
});
const success: fc.Arbitrary<Answer> = fc.constant({ outcome: 'succeeded' as const });

interface Run {
  network: 'mastercard' | 'visa';
  answers: Answer[];
  schedule: Delay[];
}

/** A card's life on one network: its answers in order (the last repeats) and the dunning schedule. */
const lifeOn = (network: Run['network'], decline: fc.Arbitrary<Answer>): fc.Arbitrary<Run> =>
  fc.record({
    network: fc.constant(network),
    answers: fc.array(fc.oneof({ weight: 6, arbitrary: decline }, { weight: 1, arbitrary: success }), {
      minLength: 1,
      maxLength: 8,
    }),
    schedule: fc.array(fc.constantFrom(...(Object.keys(DELAYS) as Delay[])), { minLength: 1, maxLength: 6 }),
  });
const runs: fc.Arbitrary<Run> = fc.oneof(lifeOn('mastercard', mastercardDecline), lifeOn('visa', visaDecline));

/** One card's world: its history as the graph keeps it, and what each call saw. */
interface CardWorld {
  run: Run;
  attempts: CardAttempt[];
  lookups: string[];
  reported: boolean;
  /** The first forecast of the round being scheduled: when, and what the governor said. */
  roundForecast: { at: number; verdict: RetryVerdict } | null;
  charges: { key: string; at: number; forecast: { at: number; verdict: RetryVerdict } | null; verdict: RetryVerdict }[];
}

const worlds = new Map<string, CardWorld>();
const decide = (w: CardWorld, at: number) =>
  decideRetry(table, w.run.network, { attempts: w.attempts, updater_lookups: w.lookups }, new Date(at));

/** Stand-ins that keep the card's history and govern as the graph does (activities/recovery.ts). */
const activities = {
  // The only method is the one that failed: the first pass has none, every charge is a round's.
  async listRecoveryCandidates(req: { exclude: string[] }) {
    return req.exclude.includes('pm-card')
      ? []
      : [{ payment_method_id: 'pm-card', used_on_trusted_device: false, last_used: null }];
  },
  async beginRecovery(req: { failure: PaymentFailure; exclude: string[] }) {
    return {
      proceed: true,
      state: 'recovering' as const,
      decline: decideDecline(req.failure.decline_code),
      candidates: await activities.listRecoveryCandidates({
        exclude: [req.failure.payment_method_id, ...req.exclude],
      }),
    };
  },
  async recordRecoveryStopped() {},
  async chargePaymentMethod(a: ChargeAttempt): Promise<ChargeOutcome> {
    const w = worlds.get(a.customer_id) as CardWorld;
    const at = Date.parse(a.at ?? '');
    if (!w.reported && a.reported) {
      w.reported = true;
      w.attempts.push({ at: new Date(at).toISOString(), outcome: 'declined', network: w.run.network });
    }
    let verdict = decide(w, at);
    if (verdict.verdict === 'updater_first') {
      w.lookups.push(new Date(at).toISOString());
      verdict = decide(w, at);
    }
    w.charges.push({ key: a.idempotency_key, at, forecast: w.roundForecast, verdict });
    w.roundForecast = null;
    if (verdict.verdict !== 'allowed')
      return {
        outcome: 'limited',
        rule: describeVerdict(verdict),
        not_before: verdict.verdict === 'not_before' ? verdict.at : null,
        never: verdict.verdict === 'never',
      };
    const n = w.attempts.length - (w.reported ? 1 : 0);
    const answer = w.run.answers[Math.min(n, w.run.answers.length - 1)] as Answer;
    w.attempts.push({ ...answer, at: new Date(at).toISOString(), network: w.run.network });
    return answer.outcome === 'succeeded'
      ? { outcome: 'succeeded', charge_id: `ch_${n}` }
      : {
          outcome: 'declined',
          decline_code: answer.decline_code ?? 'do_not_honor',
          charge_id: null,
          decision: decideDecline(answer.decline_code ?? 'do_not_honor'),
        };
  },
  async forecastCharges(req: { customer_id: string; at: string }): Promise<ChargeForecast> {
    const w = worlds.get(req.customer_id) as CardWorld;
    const at = Date.parse(req.at);
    const verdict = decide(w, at);
    w.roundForecast ??= { at, verdict };
    const earliest =
      verdict.verdict === 'never' ? null : verdict.verdict === 'not_before' ? verdict.at : new Date(at).toISOString();
    return {
      earliest,
      rule: verdict.verdict === 'not_before' ? describeVerdict(verdict) : null,
      candidates: 1,
    };
  },
  async renewCard() {
    return { outcome: 'unchanged' as const };
  },
  async deactivatePaymentMethod() {},
  async recordRecovery() {},
  async recordRecoveryFailed() {},
  // No earlier run here: nothing of the payment is open when a recovery stops or fails.
  async settleOpenCharges(): Promise<ChargeOutcome> {
    return { outcome: 'not_charged', reason: 'never_sent' };
  },
  async notifyCustomer() {
    return { sent: true, channel: 'email' as const };
  },
};

describe('dunning under the card networks’ rules (property)', () => {
  it(
    'never charges earlier than the rules allow, and charges at exactly the later of schedule and rule',
    { timeout: 600_000 },
    async () => {
      const taskQueue = `recovery-rules-${randomUUID()}`;
      const worker = await Worker.create({
        sinks: NO_OPEN_PROCESS_SINKS,
        connection: env.nativeConnection,
        taskQueue,
        workflowBundle: bundle,
        activities,
      });
      await worker.runUntil(
        fc.assert(
          fc.asyncProperty(runs, async (run) => {
            const customerId = randomUUID();
            const w: CardWorld = { run, attempts: [], lookups: [], reported: false, roundForecast: null, charges: [] };
            worlds.set(customerId, w);
            const handle = await env.client.workflow.signalWithStart(paymentRecoveryWorkflow, {
              workflowId: `payment-recovery-${randomUUID()}`,
              taskQueue,
              args: [{ dunningSchedule: run.schedule }],
              signal: paymentFailedSignal,
              signalArgs: [
                {
                  payment_id: `pay_${randomUUID()}`,
                  customer_id: customerId,
                  payment_method_id: 'pm-card',
                  amount: 1999,
                  currency: 'EUR',
                  decline_code: 'insufficient_funds',
                },
              ],
            });
            const status: RecoveryStatus = await handle.result();
            expect(['recovered', 'failed']).toContain(status.state);
            expect(w.charges.length).toBeGreaterThan(0);
            for (const c of w.charges) {
              const round = Number(/:r(\d+)$/.exec(c.key)?.[1]);
              const f = c.forecast;
              expect(f, `round ${round} was scheduled without asking the rules`).not.toBeNull();
              if (!f) continue;
              // No violation: a charge the rules would have had wait never reached the network.
              expect(c.verdict.verdict, `round ${round}: ${describeVerdict(c.verdict)}`).not.toBe('not_before');
              if (f.verdict.verdict === 'never') {
                expect(c.verdict.verdict).toBe('never');
                continue;
              }
              const scheduled = f.at + DELAYS[run.schedule[round - 1] as Delay];
              const allowed = f.verdict.verdict === 'not_before' ? Date.parse(f.verdict.at) : f.at;
              const expected = Math.max(scheduled, allowed);
              expect(c.at, `round ${round} came before its time`).toBeGreaterThanOrEqual(expected);
              expect(c.at - expected, `round ${round} came late`).toBeLessThan(TASK_SLACK_MS);
            }
            // Every round's charge, or fewer when it recovered: none lost, none added.
            const rounds = w.charges.map((c) => Number(/:r(\d+)$/.exec(c.key)?.[1]));
            expect(rounds).toEqual(rounds.map((_, i) => i + 1));
            if (status.state === 'failed') expect(rounds).toHaveLength(run.schedule.length);
          }),
          { numRuns: 12 },
        ),
      );
    },
  );
});
