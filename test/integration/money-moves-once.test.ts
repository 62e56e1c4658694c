/**
 * Money moves once, proven by an adversary. Thousands of payment recoveries run through the real
 * recovery workflow and the real activities — a real Neo4j (the charge ledger), the gateway
 * simulator over HTTP with a processor's idempotency — on Temporal's time-skipping server, while an
 * adversary, drawing from one seed, interleaves at random:
 *   - faults at the gateway: a 503 before anything is committed, a 503 after the charge committed, an
 *     answer lost after the commit (the connection dropped), a request held past the client's timeout
 *     (its retries meet a 409 "in flight"), a storm of failures long enough that the key expires, a
 *     charge answered `processing` that settles minutes later, and a listing that lags behind commits
 *     (bounded below the settle window, as a processor's must be);
 *   - changes beside the recovery: the charged card removed (right after a lost answer, most of all),
 *     a card added (signalled, or offered through the Update as the wallet route does) while it
 *     charges or dunns, the customer merged into another, the customer erased, suspended a while
 *     (a fraud review) or its charged card blocked (a confirmed fraud), a cancel from ops and the
 *     payment's owner saying it was settled elsewhere (both as the api sends them: the stop written to
 *     the charge ledger, then the Update), a cancel sent by hand (the Update alone), and a second run
 *     of the recovery beside the first (resets and terminations strike on the real server, in
 *     money-edges.test.ts: the time-skipping server has no reset, and a terminated run's work holds
 *     its time skipping for ever, temporalio/sdk-java#1138);
 *   - ops deciding what needs attention: retry, skip (refused while an outcome is unknown), cancel;
 *   - worker restarts (in-flight activities cancelled: their answers lost), and Neo4j restarts (a
 *     private instance, stopped and started again under the recoveries).
 * Then every recovery must have ended, and the invariants hold, checked against the gateway's own
 * records (the independent ledger): at most one successful charge per payment; the graph's record of
 * every recovery — its state, its charge, every attempt's outcome — agrees with the gateway's, and
 * so does every run's end; every charge the gateway made under a payment's reference is one the
 * ledger knows; no charge request of a payment left after a stop of it was accepted (the client's
 * own clock, at each request) but one the ledger stamped before the stop committed (on its way
 * then: a stop recalls nothing); what the owner was answered names the charge the gateway made, if
 * any (never "stopped" over a charge); a second report of the payment starts nothing.
 *
 * The seed is printed. Replay a run (the same recoveries, cards, faults and decisions; the
 * interleaving between recoveries follows the machine's timing):
 *   PERSONA_ADVERSARY_SEED=<seed> npx vitest run --project integration test/integration/money-moves-once.test.ts
 * More of them: PERSONA_ADVERSARY_RECOVERIES=5000. Only some, by index or range of indexes:
 * PERSONA_ADVERSARY_ONLY=17,912 or PERSONA_ADVERSARY_ONLY=5000-9999 (each recovery's draws depend
 * on the seed and its index alone, so ranges of one seed run one after another are the same
 * recoveries as one run of them all: the 20,000 by hand, docs/performance.md).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { Client, WorkflowUpdateStage, type WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker, type LogEntry, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNotificationActivities } from '../../activities/notifications';
import { createRecoveryActivities, type ChargeAttempt } from '../../activities/recovery';
import { clockOf } from '../../activities/recoveryModel';
import { HttpPaymentGateway, type GatewayCharge } from '../../clients/paymentGateway';
import { profileRules } from '../../config/env';
import { addPaymentMethod, createCustomer, getCustomer, getPaymentMethodsByCustomer } from '../../graph';
import { ConflictError } from '../../graph/errors';
import type { LedgerAttempt } from '../../graph/chargeAttempts';
import { readRecoveryLedger, requestRecoveryStop, reserveRecovery } from '../../graph/chargeLedger';
import { createDriver } from '../../graph/driver';
import { migrate } from '../../graph/schema';
import { updatePaymentMethodStatus } from '../../graph/walletDefaults';
import { loadConfig } from '../../config/env';
import { privateNeo4j, type PrivateNeo4j } from '../support/privateServices';
import { eraseCustomer } from '../../graph/erasure';
import { mergeCustomers } from '../../graph/identityMerge';
import { removePaymentMethod } from '../../graph/paymentMethods';
import { loadRuleTable } from '../../payments/ruleTables';
import { unavailableDependency } from '../../runtime/dependencies';
import { createGatewaySimulator, type ChargeFault } from '../../simulators/gateway/app';
import { customerMergedSignal } from '../../temporal/identityMerge';
import {
  cancelRecoveryUpdate,
  OFFER_BY_SIGNAL,
  offerPaymentMethodUpdate,
  paymentMethodBlockedSignal,
  paymentNoLongerOwedUpdate,
  type OwnerStopAnswer,
  paymentFailedSignal,
  paymentMethodAddedSignal,
  RECOVERY_WORKFLOW_TYPE,
  recoveryStatusQuery,
  recoveryWorkflowId,
  resolveAttentionUpdate,
  type PaymentFailure,
  type RecoveryStatus,
} from '../../temporal/recovery';
import { WORKFLOW_INTERCEPTORS, workerInterceptors } from '../../workers/logging';
import { RequestContext } from '../../runtime/requestContext';
import { pick, streamOf as seededStream, type Rand } from '../../scripts/random';
import { openTestGraph, type TestGraph } from '../support/graph';
import type { ChargeRequest, GatewayCallOptions } from '../../clients/paymentGateway';
import { openProcessSinks } from '../../workers/openProcesses';
import { cardIdentity } from '../support/recovery';
import { createTimeSkippingEnv, PERSONA_WORKFLOWS } from '../support/temporal';
import { createFixtureActivities } from '../fixtures/activities';

const SEED = Number(process.env.PERSONA_ADVERSARY_SEED ?? Math.floor(Math.random() * 2 ** 31));
const RECOVERIES = Number(process.env.PERSONA_ADVERSARY_RECOVERIES ?? 2000);
/** Time-skipping servers side by side, each with its own workers and gateway: recoveries are spread over them. */
const SHARDS = Number(process.env.PERSONA_ADVERSARY_SHARDS ?? 4);
/** Recoveries under way at once on each server. */
const IN_FLIGHT = Number(process.env.PERSONA_ADVERSARY_IN_FLIGHT ?? 32);
/**
 * Recoveries a time-skipping server takes before a fresh one (with its own workers and gateway)
 * takes its place. The test server never forgets a lock event, and releasing one scans them all
 * under its clock's lock: an old server spends more CPU on every step, and its time skips ever
 * later (docs/performance.md).
 */
const RECYCLE_EVERY = Number(process.env.PERSONA_ADVERSARY_RECYCLE ?? 250);
const ONLY_SPEC = (process.env.PERSONA_ADVERSARY_ONLY ?? '').replace(/\s/g, '');
const ONLY = ONLY_SPEC.split(',')
  .filter((x) => x !== '')
  .flatMap((x) => {
    const m = /^(\d+)(?:-(\d+))?$/.exec(x);
    const from = Number(m?.[1]);
    const to = Number(m?.[2] ?? m?.[1]);
    if (!m || to < from)
      throw new Error(`PERSONA_ADVERSARY_ONLY: "${x}" is neither an index nor a range like 5000-9999`);
    return Array.from({ length: to - from + 1 }, (_, i) => from + i);
  });
/** Real time a recovery is under attack before the adversary lets it finish (faults off, ops retry). */
const CHAOS_MS = 4_000;
/**
 * Once the adversary has stopped, a recovery must keep taking steps (a new event in its history)
 * until it ends. A recovery in dunning advances only as fast as its time-skipping server skips, and
 * the server skips only when nothing holds its time: no workflow task and no activity attempt
 * outstanding on it (an attempt from its scheduling to its end, a backoff excepted), none of the
 * adversary's holds (a charge request in flight), no lock leaked (sdk-java#1138: a workflow closed
 * with an activity outstanding). So a recovery waiting for its 1 h timer waits for every other
 * recovery on its server — an attempt held up by a Neo4j restart until its timeout, a worker
 * draining — and on a busy machine 180 s of real time without a step says nothing of it while its
 * server's time does not move. A recovery is stuck when it takes no step for STUCK_MS while its
 * server's time passes its last step or its own next round, whichever is later, by STUCK_SKIPPED_MS
 * (twice the longest deadline it waits on: ops' 24 h and the settling's 24 h; the clock workflow
 * moves an idle server on 12 h at a time), or for HELD_MAX_MS whatever its server's time did (a
 * server held that long is a fault to find). WAY_OUT_MS bounds the whole way out.
 */
const STUCK_MS = 180_000;
const STUCK_SKIPPED_MS = 48 * 3_600_000;
const HELD_MAX_MS = 600_000;
const WAY_OUT_MS = 900_000;
/** How often each server's time is read, to tell a recovery that waits for its server from one that waits for ever. */
const CLOCK_EVERY_MS = 5_000;

/** The gateway's timings, in the workflow's (skipped) time where they are windows. */
const CLIENT_TIMEOUT_MS = 1_000;
const SIM_KEY_TTL_MS = 25 * 60_000;
/** Persona counts on less than the processor keeps (a margin on its documented minimum). */
const PERSONA_KEY_TTL_MS = 20 * 60_000;
/**
 * Longer than a request ever takes to be charged here and then listed, on either clock: a request
 * the latency fault holds (1.3 s) is charged seconds after it left on a loaded machine (2.5 s seen
 * in CI), and the listing lags up to LISTING_LAG_MAX_MS after that.
 */
const SETTLE_MS = 10_000;
/** The longest the gateway's listing lags behind a charge here: well inside the settle window. */
const LISTING_LAG_MAX_MS = 1_000;
const RETRY_FOR = '45m';
const SCHEDULE = ['1h', '2h'];

/** A stream of draws for one recovery and one purpose: the same seed and index, the same draws. */
const streamOf = (index: number, purpose: number): Rand => seededStream(SEED, index, purpose);

type CardKind = 'pays' | 'soft' | 'pays_after_1' | 'hard' | 'revoked' | 'fraud';
const tokenOf = (kind: CardKind): string => {
  const card = `tok_visa_card-${cardIdentity()}`;
  return {
    pays: card,
    soft: `${card}_decline_insufficient_funds`,
    pays_after_1: `${card}_decline_insufficient_funds_pays_after_1`,
    hard: `${card}_decline_do_not_try_again`,
    revoked: `${card}_revoked`,
    fraud: `${card}_decline_stolen_card`,
  }[kind];
};
const CARD_KINDS: [CardKind, number][] = [
  ['pays', 40],
  ['soft', 20],
  ['pays_after_1', 12],
  ['hard', 12],
  ['revoked', 8],
  ['fraud', 3],
];

/** One recovery under attack: what it is, and what the adversary did to it. */
interface Scenario {
  index: number;
  payment_id: string;
  /** The customer the recovery charges now (a merge moves it to the survivor). */
  customer_id: string;
  first_customer_id: string;
  cards: string[];
  failure: PaymentFailure;
  faults: Rand;
  changes: Rand;
  ops: Rand;
  /** Charge requests still to fail in a row (a storm: the key expires before the gateway answers). */
  storm: number;
  chaos: boolean;
  erased: boolean;
  /** When ops decided each attention (by its `since`). */
  decided: Map<string, number>;
  shard: Shard;
  handle?: WorkflowHandle;
  did: string[];
  /** The payment's owner said it was settled elsewhere: what the recovery answered (null: refused). */
  owner?: Promise<OwnerStopAnswer | null>;
  /** When each charge request of the payment left Persona (the client's clock, at the call), and its key. */
  sends: { at: number; key: string }[];
  /** When the first stop written to the ledger first (as the api sends it) was known accepted. */
  stopAcceptedAt?: number;
  /** Runs of the recovery besides the main one (started beside it), and how many times it was run again. */
  extraRuns: WorkflowHandle[];
  /** How the runs beside it ended. */
  extraEnds?: RecoveryStatus[];
}

interface Tally {
  [what: string]: number;
}

/**
 * One time-skipping server with what runs on it: its clock workflow, the worker of the workflows,
 * the worker of the activities (the one the adversary restarts) and a gateway simulator of its own
 * (its clock follows this server's skipped time). The server skips time only when every workflow
 * on it waits, so several of them side by side get through more recoveries on the same machine.
 */
interface Shard {
  /** Its place among the SHARDS side by side, and which server of that place it is. */
  n: number;
  generation: number;
  env: TestWorkflowEnvironment;
  client: Client;
  taskQueue: string;
  server: ServerType;
  base: string;
  /** The simulator's clock: the latest time, in the workflows' (skipped) time, an activity of the shard ran at. */
  simNow: number;
  workers: { worker?: Worker; running?: Promise<void> }[];
  /** Each idempotency key's charge requests: sent (by any of its workers), received, and being handled. */
  served: Map<string, Served>;
  /** Holds of time skipping the adversary has taken and not yet released (a charge request in flight). */
  holds: number;
  /** The recoveries under way on it. */
  running: Set<Scenario>;
  /**
   * Its time, read every CLOCK_EVERY_MS: the server's time (`time`) at real time `real`, when it
   * last skipped (moved further than real time did), and whether that it has not since is reported.
   */
  clock: { real: number; time: number; skippedAt: number; reported: boolean } | null;
  /** Its activity worker's restarts, and (once it has no recovery left) its teardown. */
  restarts?: Promise<void>;
  retired?: boolean;
  tornDown?: Promise<void>;
}

let graph: TestGraph;
let bundle: WorkflowBundleWithSourceMap;
/** The clock workflow's bundle, built once for every server. */
let clockBundle: WorkflowBundleWithSourceMap;
/** Every server started, retired or not. */
const shards: Shard[] = [];
const scenarios = new Map<string, Scenario>();
const tally: Tally = {};
const count = (what: string, n = 1) => void (tally[what] = (tally[what] ?? 0) + n);
const pending: Promise<unknown>[] = [];

/** A workflow's warning that it needs attention, seen in the runtime's log: ops decide. */
function watch(entry: LogEntry): void {
  if (entry.message !== 'payment recovery needs attention') return;
  const workflowId = (entry.meta as { workflowId?: string } | undefined)?.workflowId ?? '';
  const s = scenarios.get(workflowId.replace(recoveryWorkflowId(''), '').replace(SECOND_RUN, ''));
  if (!s) return;
  // The main run, or one beside it (whose decisions are ops' as much).
  const beside = workflowId.endsWith(SECOND_RUN) ? s.extraRuns.find((h) => h.workflowId === workflowId) : undefined;
  pending.push(decide(s, beside).catch((err: unknown) => count(`decision error: ${String(err)}`.slice(0, 80))));
}

/** What a run beside the main one adds to its workflow id. */
const SECOND_RUN = '-second';

/** Ops answer a recovery that needs attention: retry mostly, skip (refused after an unknown outcome), cancel. */
async function decide(s: Scenario, beside?: WorkflowHandle): Promise<void> {
  const handle = beside ?? (s.handle as WorkflowHandle);
  const seen = await handle.query(recoveryStatusQuery);
  const attention = seen.attention;
  if (seen.state !== 'needs_attention' || !attention) return;
  // One decision per attention (the log and the fallback may both ask), again only after a while.
  const decided = s.decided.get(`${handle.workflowId} ${attention.since}`);
  if (decided !== undefined && performance.now() - decided < 10_000) return;
  s.decided.set(`${handle.workflowId} ${attention.since}`, performance.now());
  // Ops read what needs attention. Under attack they do anything (a skip of an unknown outcome is
  // refused); once the adversary has stopped, what ops would: skip what may be skipped (nothing was
  // charged: a revoked token), retry the rest (the same key: the gateway says what became of it).
  const action = s.chaos
    ? pick(s.ops, [
        ['retry', attention.skippable ? 1 : 6],
        ['skip', attention.skippable ? 6 : 2],
        ['cancel', 2],
      ] as const)
    : attention.skippable
      ? 'skip'
      : 'retry';
  count(`ops ${action}`);
  if (action === 'cancel') {
    s.did.push('ops cancel');
    return cancel(s, 'adversary: ops cancel', { ledgerFirst: true }, handle);
  }
  const answer = (a: 'retry' | 'skip') =>
    handle.executeUpdate(resolveAttentionUpdate, { args: [{ action: a, since: attention.since }] });
  try {
    await answer(action);
  } catch {
    count(`ops ${action} refused`);
    // A skip of an outcome that is not known is refused (as it must be): ops retry instead.
    if (action === 'skip' && !attention.skippable) await answer('retry').catch(() => count('ops retry refused'));
  }
}

/** The gateway's fault for a charge request of a recovery under attack. */
function faultFor(req: { reference: string | null }): ChargeFault | null {
  const s = req.reference ? scenarios.get(req.reference) : undefined;
  if (!s?.chaos) return null;
  if (s.storm > 0) {
    s.storm--;
    count('fault storm');
    return { kind: 'fail_before' };
  }
  const fault = pick<ChargeFault | null>(s.faults, [
    [null, 54],
    [{ kind: 'fail_before' }, 8],
    [{ kind: 'fail_after_commit' }, 10],
    [{ kind: 'lose_answer' }, 12],
    [{ kind: 'latency', ms: CLIENT_TIMEOUT_MS + 300 }, 7],
    [{ kind: 'lose_answer' }, 5], // then a storm
    // Settles half a second to five seconds later, by the simulator's clock: real time while the
    // server does not skip (longer would hold every workflow of the shard: time is skipped only when
    // no activity runs), skipped time when it does.
    [{ kind: 'processing', ms: 500 + Math.floor(s.faults() * 4_500) }, 4],
  ]);
  if (fault?.kind === 'lose_answer' && s.faults() < 0.3) {
    s.storm = 6 + Math.floor(s.faults() * 16);
    count('storm begun');
  }
  if (fault) count(`fault ${fault.kind}`);
  return fault;
}

/**
 * How long the gateway's listing lags behind a new charge of a recovery under attack: now and then
 * up to LISTING_LAG_MAX_MS, below the settle window (a processor whose listing lags longer than
 * the window Persona is configured with would make it believe "no charge": docs/runbook.md).
 */
function listingLagFor(req: { reference: string | null }): number {
  const s = req.reference ? scenarios.get(req.reference) : undefined;
  if (!s?.chaos || s.faults() >= 0.2) return 0;
  count('listing lag');
  return Math.floor(s.faults() * LISTING_LAG_MAX_MS);
}

/**
 * The gateway's fetch, counting each charge request by its idempotency key: received (the handler
 * entered), and still being handled (a request held, or one whose client gave up on it).
 */
interface Served {
  sent: number;
  received: number;
  handling: number;
}

function servedOf(shard: Shard, key: string): Served {
  const seen = shard.served.get(key) ?? { sent: 0, received: 0, handling: 0 };
  shard.served.set(key, seen);
  return seen;
}

function served(shard: Shard, fetch: (req: Request, env?: unknown) => Response | Promise<Response>) {
  return (req: Request, env?: unknown): Response | Promise<Response> => {
    const key = req.method === 'POST' ? req.headers.get('idempotency-key') : null;
    if (!key) return fetch(req, env);
    const seen = servedOf(shard, key);
    seen.received++;
    seen.handling++;
    return Promise.resolve(fetch(req, env)).finally(() => void seen.handling--);
  };
}

/**
 * A charge request whose client gave up on it (its timeout, a cancellation, a worker stopping) may
 * still be on its way to the gateway, or held there, in real time: the time-skipping server must not
 * race through the workflows' minutes meanwhile (it does not while an activity runs; the activity
 * gave up on it, though), or "the gateway has no charge yet" would be believed of a charge about to
 * be made — something no real clock allows within a settle window. So when a charge call ends, the
 * shard's time is held (locked before the call's end reaches the activity) until the gateway has
 * received every request of the key the client sent — or the client's own timeout has passed since
 * the call ended, for a request that never left — and handles none of them any more.
 */
async function holdTimeWhileInFlight(shard: Shard, key: string, sent: number): Promise<void> {
  const test = shard.env.connection.testService;
  const done = (): boolean => {
    const seen = shard.served.get(key);
    return seen !== undefined && seen.received >= sent && seen.handling === 0;
  };
  if (!test || done()) return;
  // A lock whose answer was lost may still have been taken, and an unlock lost under load would
  // leave the shard's clock stopped for good: release in both cases, retrying while the server is
  // unreachable or slow (an unbalanced unlock is refused with another code, which ends it).
  const transient = (err: { code?: number }): boolean =>
    err.code === 1 || err.code === 4 || err.code === 8 || err.code === 14;
  const release = (attempt: number): void =>
    void test.unlockTimeSkipping({}).catch((err: Error & { code?: number }) => {
      if (!transient(err)) return;
      if (attempt < 20) setTimeout(() => release(attempt + 1), 250 * (attempt + 1));
      else {
        count('time skipping not released');
        console.warn(`[adversary] time skipping not released: ${err.message}`);
      }
    });
  const locked = await test.lockTimeSkipping({}).then(
    () => true,
    (err: { code?: number }) => transient(err),
  );
  if (!locked) return;
  count('time held for a request in flight');
  shard.holds++;
  const gaveUp = Date.now();
  void (async () => {
    while (!done()) {
      const seen = shard.served.get(key);
      if ((seen?.handling ?? 0) === 0 && Date.now() - gaveUp > CLIENT_TIMEOUT_MS) break;
      await sleep(20);
    }
    shard.holds--;
    release(0);
  })();
}

/** Beside a charge (just after it, not waiting for it): the adversary changes the world. */
function afterCharge(s: Scenario, a: ChargeAttempt, lost: boolean): void {
  if (!s.chaos || s.erased || a.mode === 'settle') return;
  const change: string | null =
    s.changes() < (lost ? 0.3 : 0.06)
      ? 'remove the charged card'
      : pick<string | null>(s.changes, [
          [null, 47],
          ['add a card', 5],
          ['offer a card', 4],
          ['merge', 4],
          ['erase', 2],
          ['cancel', 3],
          ['cancel by hand', 1],
          ['the owner says it was settled', 3],
          [s.extraRuns.length === 0 ? 'a second run at once' : null, 3],
          ['suspend the customer a while', 3],
          ['block the charged card', 2],
        ]);
  if (change)
    pending.push(
      act(s, change, a.payment_method_id).catch((err: unknown) => count(`change error: ${String(err)}`.slice(0, 100))),
    );
}

async function act(s: Scenario, change: string, paymentMethodId?: string): Promise<void> {
  const handle = s.handle as WorkflowHandle;
  s.did.push(change);
  count(change);
  switch (change) {
    case 'remove the charged card':
      await removePaymentMethod(graph, s.customer_id, paymentMethodId as string).catch(() => count('remove refused'));
      return;
    case 'add a card': {
      const pm = await addPaymentMethod(graph, s.customer_id, card(pick(s.changes, CARD_KINDS), s.cards.length));
      s.cards.push(pm.id);
      await handle.signal(paymentMethodAddedSignal, { payment_method_id: pm.id });
      return;
    }
    case 'offer a card': {
      // As the wallet route does: the Update, or the signal when the recovery says so.
      const pm = await addPaymentMethod(graph, s.customer_id, card(pick(s.changes, CARD_KINDS), s.cards.length));
      s.cards.push(pm.id);
      const offered = await handle
        .startUpdate(offerPaymentMethodUpdate, {
          args: [{ payment_method_id: pm.id }],
          updateId: `offer:${pm.id}`,
          waitForStage: WorkflowUpdateStage.ACCEPTED,
        })
        .then(
          (u) => u.result().then(() => 'answered'),
          (err: unknown) => (JSON.stringify(err).includes(OFFER_BY_SIGNAL) ? 'by signal' : 'refused'),
        )
        .catch((err: unknown) => (JSON.stringify(err).includes(OFFER_BY_SIGNAL) ? 'by signal' : 'refused'));
      count(`offer ${offered}`);
      if (offered === 'by signal') await handle.signal(paymentMethodAddedSignal, { payment_method_id: pm.id });
      return;
    }
    case 'a second run at once': {
      const second = await startRun(s, `${recoveryWorkflowId(s.payment_id)}${SECOND_RUN}`);
      s.extraRuns.push(second);
      return;
    }
    case 'suspend the customer a while': {
      // A fraud review: suspended, then (later, in real time) reinstated; the charge ledger decides meanwhile.
      const customer = s.customer_id;
      await graph.query("MATCH (c:Customer {id: $id}) WHERE c.status = 'active' SET c.status = 'suspended'", {
        id: customer,
      });
      await sleep(200 + s.changes() * 3_000);
      await graph.query("MATCH (c:Customer {id: $id}) WHERE c.status = 'suspended' SET c.status = 'active'", {
        id: customer,
      });
      return;
    }
    case 'block the charged card':
      // A confirmed fraud on the card: compromised in the wallet, and the recovery told.
      await updatePaymentMethodStatus(graph, paymentMethodId as string, 'compromised', { reason: 'adversary' }).catch(
        () => count('block refused'),
      );
      await handle.signal(paymentMethodBlockedSignal, {
        payment_method_id: paymentMethodId as string,
        reason: 'adversary: confirmed fraud',
      });
      return;
    case 'cancel by hand':
      // The Update alone (the Temporal CLI): the workflow writes the stop to the ledger itself.
      await cancel(s, 'adversary: ops cancel from the CLI', { ledgerFirst: false });
      return;
    case 'merge': {
      const survivor = await createCustomer(graph, {});
      const merge_id = `adversary-${randomUUID()}`;
      const merged = s.customer_id;
      await mergeCustomers(graph, {
        merge_id,
        survivor_id: survivor.id,
        merged_id: merged,
        decided_by: 'ops',
        requested_by: 'adversary',
        reason: 'adversary',
      });
      s.customer_id = survivor.id;
      await handle.signal(customerMergedSignal, { merge_id, merged_id: merged, survivor_id: survivor.id });
      return;
    }
    case 'erase':
      // As the erasure starts: a stop to the recovery (the ledger first); then (not waiting) the graph's erasure.
      s.erased = true;
      await cancel(s, 'adversary: the customer is being erased', { ledgerFirst: true, by: 'erasure' });
      await eraseCustomer(graph, s.customer_id);
      return;
    case 'cancel':
      await cancel(s, 'adversary: ops cancel', { ledgerFirst: true });
      return;
    case 'the owner says it was settled': {
      // As the api sends it: the ledger first, then the Update, taken whatever the recovery does.
      await requestRecoveryStop(graph, s.payment_id, {
        by: 'owner',
        reason: "the payment's owner says it is no longer owed (settled_elsewhere): adversary",
      });
      const word = await handle
        .startUpdate(paymentNoLongerOwedUpdate, {
          args: [{ reason: 'settled_elsewhere', note: 'adversary' }],
          waitForStage: WorkflowUpdateStage.ACCEPTED,
        })
        .catch(() => null);
      if (word) s.stopAcceptedAt ??= Date.now();
      else count('owner refused');
      s.owner = word ? word.result() : Promise.resolve(null);
      // Read at the end; a server torn down before then must not leave its rejection unhandled.
      s.owner.catch(() => undefined);
      return;
    }
  }
}

/**
 * A cancel as ops (the api) and the erasure send it: the stop written to the charge ledger first,
 * then the `cancel` Update, taken whatever the recovery does (answered when it ends); or, by hand
 * (the CLI), the Update alone. A refusal (the recovery has ended) is counted; the adversary goes on.
 */
async function cancel(
  s: Scenario,
  reason: string,
  how: { ledgerFirst: boolean; by?: 'ops' | 'erasure' },
  handle: WorkflowHandle = s.handle as WorkflowHandle,
): Promise<void> {
  if (how.ledgerFirst)
    await requestRecoveryStop(graph, s.payment_id, { by: how.by ?? 'ops', reason: `cancelled: ${reason}` });
  try {
    const update = await handle.startUpdate(cancelRecoveryUpdate, {
      args: [{ reason }],
      waitForStage: WorkflowUpdateStage.ACCEPTED,
    });
    if (how.ledgerFirst) s.stopAcceptedAt ??= Date.now();
    // A refusal is known at once, in the result; a taken cancel is answered when the recovery ends.
    pending.push(
      update.result().then(
        () => count('cancel taken'),
        () => count('cancel refused'),
      ),
    );
  } catch {
    count('cancel not sent (the recovery had closed)');
  }
}

const card = (kind: CardKind, i: number) => ({
  type: 'card' as const,
  token: tokenOf(kind),
  brand: 'visa',
  last_four: String(1000 + i),
  expiry_month: 12,
  expiry_year: 2035,
});

/** A customer with 1–3 cards; the first one's charge just failed (what Synapse reports). */
/**
 * A step of the test's own set-up (not the recovery under test), retried while Neo4j is busy: on
 * two shared cores, beside the rest of the suite, a write can wait out its 10 s timeout (the api
 * answers that 503, an activity retries it; the set-up does the same, and counts it).
 */
async function setUp<T>(what: string, step: () => Promise<T>, made?: () => Promise<T | null>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await setUpSlots.run(step);
    } catch (err) {
      // A write whose commit went through, its answer lost (Neo4j stopped under it), and retried
      // by the driver: what it made is there already.
      const there = err instanceof ConflictError && made ? await made() : null;
      if (there) {
        count(`set-up found made (${what})`);
        return there;
      }
      const busy = unavailableDependency(err);
      if (!busy || attempt >= 6) throw err;
      count(`set-up retried (${what}: ${busy.reason})`.slice(0, 120));
      await sleep(250 * 2 ** attempt);
    }
  }
}

/**
 * At most SET_UP_SLOTS set-up writes at once. Every recovery in flight sets its customer up as it
 * starts: 128 at once, each a few transactions, queued behind one another's commits on two cores,
 * waited out their 10 s timeout six times over (the run failed on its own fixtures, not on money).
 */
const SET_UP_SLOTS = 8;
const setUpSlots = (() => {
  let free = SET_UP_SLOTS;
  const waiting: (() => void)[] = [];
  return {
    async run<T>(step: () => Promise<T>): Promise<T> {
      if (free > 0) free--;
      else await new Promise<void>((resolve) => waiting.push(resolve));
      try {
        return await step();
      } finally {
        const next = waiting.shift();
        if (next) next();
        else free++;
      }
    },
  };
})();

async function scenario(index: number, shard: Shard): Promise<Scenario> {
  const draw = streamOf(index, 1);
  const kinds = Array.from({ length: 1 + Math.floor(draw() * 3) }, () => pick(draw, CARD_KINDS));
  const customerId = randomUUID();
  const customer = await setUp(
    'customer',
    () => createCustomer(graph, { id: customerId }),
    () => getCustomer(graph, customerId),
  );
  const cards: string[] = [];
  for (const [i, kind] of kinds.entries()) {
    const lastFour = card(kind, i).last_four;
    const made = async () =>
      (await getPaymentMethodsByCustomer(graph, customer.id)).find((m) => m.last_four === lastFour) ?? null;
    cards.push((await setUp('card', () => addPaymentMethod(graph, customer.id, card(kind, i)), made)).id);
  }
  const payment_id = `adv_${SEED}_${index}_${randomUUID().slice(0, 8)}`;
  const failure: PaymentFailure = {
    payment_id,
    customer_id: customer.id,
    payment_method_id: cards[0] as string,
    amount: 1000 + Math.floor(draw() * 9000),
    currency: 'USD',
    decline_code:
      kinds[0] === 'fraud' ? 'stolen_card' : kinds[0] === 'hard' ? 'do_not_try_again' : 'insufficient_funds',
  };
  return {
    index,
    payment_id,
    customer_id: customer.id,
    first_customer_id: customer.id,
    cards,
    failure,
    faults: streamOf(index, 2),
    changes: streamOf(index, 3),
    ops: streamOf(index, 4),
    storm: 0,
    chaos: true,
    erased: false,
    decided: new Map(),
    shard,
    did: [],
    sends: [],
    extraRuns: [],
  };
}

/** Reports the failure as the api does: the ledger's reservation, then signal-with-start. */
async function report(s: Scenario): Promise<WorkflowHandle> {
  // A reservation whose answer was lost and is asked again finds its own (still recovering) one.
  const reserved = await setUp('reservation', () => reserveRecovery(graph, s.failure));
  expect(reserved.created || reserved.recovery.state === 'recovering').toBe(true);
  return startRun(s, recoveryWorkflowId(s.payment_id));
}

/** A run of the payment's recovery under `workflowId` (the api's, one beside it, or one started again). */
function startRun(s: Scenario, workflowId: string): Promise<WorkflowHandle> {
  return s.shard.client.workflow.signalWithStart(RECOVERY_WORKFLOW_TYPE, {
    workflowId,
    taskQueue: s.shard.taskQueue,
    args: [{ dunningSchedule: SCHEDULE, chargeRetryFor: RETRY_FOR }],
    signal: paymentFailedSignal,
    signalArgs: [s.failure],
    // A busy machine (two cores for Neo4j, Temporal and this process): time enough for a task.
    workflowTaskTimeout: '1 minute',
  });
}

/** A run's end, or why it has none. */
function resultOf(handle: WorkflowHandle): Promise<RecoveryStatus | { failed: string }> {
  return (handle.result() as Promise<RecoveryStatus>).catch((err: unknown) => ({
    failed: err instanceof Error ? `${err.message} (${String(err.cause)})` : String(err),
  }));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Real seconds since `at` (ms), in words for a problem; '?' when unknown. */
const secondsSince = (at: number | undefined): string =>
  at === undefined ? '?' : ((Date.now() - at) / 1000).toFixed(0);
const hours = (ms: number): string => (ms / 3_600_000).toFixed(1);

/** One recovery from its report to its end, attacked for a while, then let finish. */
async function runOne(
  index: number,
  shard: Shard,
): Promise<{ s: Scenario; status: RecoveryStatus | null; problem: string | null }> {
  const s = await scenario(index, shard);
  scenarios.set(s.payment_id, s);
  shard.running.add(s);
  try {
    return await attack(s);
  } finally {
    shard.running.delete(s);
  }
}

async function attack(s: Scenario): Promise<{ s: Scenario; status: RecoveryStatus | null; problem: string | null }> {
  const shard = s.shard;
  s.handle = await report(s);
  const ending = resultOf(s.handle);
  const result = () => ending;
  const ended = await Promise.race([result().then(() => true), sleep(CHAOS_MS).then(() => false)]);
  // The adversary stops: no more faults or changes, and ops retry what needs attention.
  s.chaos = false;
  if (!ended) {
    // What needs attention now was decided in chaos (maybe a cancel, maybe still waiting): look once.
    const status = await s.handle.query(recoveryStatusQuery).catch(() => null);
    if (status?.state === 'needs_attention') await decide(s);
  }
  const deadline = sleep(WAY_OUT_MS).then(() => 'timeout' as const);
  let steps = -1;
  let steppedAt = Date.now();
  // The server's time at the last step (unknown until its clock is first read).
  let steppedTime = shard.clock?.time;
  for (;;) {
    const outcome = await Promise.race([result(), sleep(15_000).then(() => 'slow' as const), deadline]);
    if (outcome === 'timeout')
      return {
        s,
        status: null,
        problem:
          `no way out within ${WAY_OUT_MS / 1000} s (its server's time last skipped ` +
          `${secondsSince(shard.clock?.skippedAt)} s ago)${await keepHistory(s)}`,
      };
    if (outcome !== 'slow' && 'failed' in outcome)
      return { s, status: null, problem: `failed: ${outcome.failed}${await keepHistory(s)}` };
    if (outcome !== 'slow') {
      // The runs beside it end too (each ends as the ledger says, or by its own charges).
      for (const extra of s.extraRuns) {
        const ending = resultOf(extra);
        let other: Awaited<typeof ending> | 'slow' | 'timeout';
        do {
          other = await Promise.race([ending, sleep(15_000).then(() => 'slow' as const), deadline]);
          // A decision lost with a worker: ask once more.
          if (other === 'slow') await decide(s, extra).catch(() => undefined);
        } while (other === 'slow');
        if (other === 'timeout' || 'failed' in other)
          return { s, status: null, problem: `a run beside it did not end: ${JSON.stringify(other)}` };
        s.extraEnds = [...(s.extraEnds ?? []), other];
      }
      return { s, status: outcome, problem: null };
    }
    const length = await s.handle
      .describe()
      .then((d) => d.historyLength)
      .catch(() => steps);
    const status = await s.handle.query(recoveryStatusQuery).catch(() => null);
    const time = shard.clock?.time;
    if (length !== steps) [steps, steppedAt, steppedTime] = [length, Date.now(), time];
    steppedTime ??= time;
    // Due by its last step or its own next round (a network rule may put that days out), whichever
    // is later, plus STUCK_SKIPPED_MS; unknown until its server's clock is read.
    const nextRound = Date.parse(status?.next_retry_at ?? '') || 0;
    const due = steppedTime === undefined ? Infinity : Math.max(steppedTime, nextRound) + STUCK_SKIPPED_MS;
    const still = Date.now() - steppedAt;
    if ((still > STUCK_MS && time !== undefined && time > due) || still > HELD_MAX_MS)
      return {
        s,
        status: null,
        problem:
          `stuck: no step in ${(still / 1000).toFixed(0)} s, its server's time having moved ` +
          `${time === undefined || steppedTime === undefined ? '?' : hours(time - steppedTime)} h ` +
          `and last skipped ${secondsSince(shard.clock?.skippedAt)} s ago` +
          `${await keepHistory(s)}`,
      };
    // A decision lost with a worker (its log never came): ask once more.
    if (status?.state === 'needs_attention') await decide(s);
  }
}

/** Where the histories of recoveries that went wrong are kept, to read (`temporal workflow show`-like JSON). */
const KEPT = mkdtempSync(path.join(tmpdir(), 'money-once-histories-'));
async function keepHistory(s: Scenario): Promise<string> {
  try {
    const history = await (s.handle as WorkflowHandle).fetchHistory();
    const file = path.join(KEPT, `${s.payment_id}.json`);
    writeFileSync(file, JSON.stringify(history, null, 1));
    return ` (history: ${file})`;
  } catch {
    return '';
  }
}

/**
 * What the recovery answered the payment's owner, against the gateway's records: a charge made is
 * never hidden (answered `recovered` with that charge), and `stopped` means nothing was charged.
 */
function ownerTold(answer: OwnerStopAnswer | null | string | undefined, charges: GatewayCharge[]): string[] {
  if (answer === undefined || answer === null) return [];
  if (typeof answer === 'string') return [`the owner's word was not answered: ${answer}`];
  const succeeded = charges.filter((c) => c.status === 'succeeded');
  if (answer.outcome === 'recovered') {
    if (succeeded.length !== 1 || answer.charge?.charge_id !== succeeded[0]?.id)
      return [`the owner was told of charge ${answer.charge?.charge_id}, the gateway has ${succeeded.length}`];
    return [];
  }
  if (succeeded.length > 0)
    return [`the owner was told ${answer.outcome}, but the gateway charged ${succeeded[0]?.id}: hidden`];
  return [];
}

/** Every invariant of one recovery, against the gateway's records; problems in words. */
function check(
  status: RecoveryStatus,
  charges: GatewayCharge[],
  ledger: Awaited<ReturnType<typeof readRecoveryLedger>>,
): string[] {
  const problems: string[] = [];
  const succeeded = charges.filter((c) => c.status === 'succeeded');
  if (succeeded.length > 1)
    problems.push(`charged ${succeeded.length} times: ${succeeded.map((c) => c.id).join(', ')}`);
  if (!ledger) return [...problems, 'the graph has no recovery'];
  const { recovery, attempts } = ledger;
  if (recovery.state === 'recovering') problems.push('the ledger has it still recovering');
  if (!['recovered', 'failed', 'stopped'].includes(status.state)) problems.push(`the workflow ended ${status.state}`);
  if (recovery.state !== status.state) problems.push(`the ledger says ${recovery.state}, the workflow ${status.state}`);
  if (recovery.state === 'recovered') {
    if (succeeded.length !== 1)
      problems.push(`recorded recovered, the gateway has ${succeeded.length} successful charges`);
    else if (succeeded[0]?.id !== recovery.charge_id)
      problems.push(`recorded recovered by ${recovery.charge_id}, the gateway charged ${succeeded[0]?.id}`);
    if (status.recovered_with !== recovery.recovered_with)
      problems.push(`recovered with ${status.recovered_with} (workflow), ${recovery.recovered_with} (ledger)`);
  } else if (succeeded.length > 0)
    problems.push(`recorded ${recovery.state}, but the gateway charged ${succeeded[0]?.id}`);
  const byKey = new Map<string, LedgerAttempt>(attempts.map((a) => [a.key, a]));
  for (const c of charges)
    if (!byKey.has(c.idempotency_key))
      problems.push(`the gateway charged ${c.id} under ${c.idempotency_key}, unknown to the ledger`);
  for (const a of attempts) {
    const made = charges.filter((c) => c.idempotency_key === a.key);
    if (made.length > 1) problems.push(`key ${a.key} was charged ${made.length} times`);
    const first = made[0];
    switch (a.state) {
      case 'sent':
        problems.push(`attempt ${a.key} is still of unknown outcome`);
        break;
      case 'succeeded':
      case 'declined':
        if (first?.status !== a.state || first.id !== a.charge_id)
          problems.push(
            `attempt ${a.key} is ${a.state} ${a.charge_id}; ` +
              `the gateway has ${first ? `${first.status} ${first.id}` : 'nothing'}`,
          );
        break;
      case 'refused':
      case 'absent':
        if (first)
          problems.push(
            `attempt ${a.key} is ${a.state} (last sent ${a.last_sent_at}, settled ${a.answered_at}); ` +
              `the gateway has ${first.status} ${first.id} (made ${first.created_at})`,
          );
        break;
    }
  }
  return problems;
}

/** A time-skipping server with its clock, its workers (the activities' restarted now and then) and its gateway. */
async function startShard(n: number, generation: number): Promise<Shard> {
  const env = await createTimeSkippingEnv({ watch });
  try {
    return await startOn(env, n, generation);
  } catch (err) {
    await env.teardown().catch(() => undefined);
    throw err;
  }
}

async function startOn(env: TestWorkflowEnvironment, n: number, generation: number): Promise<Shard> {
  // One client that never locks time: the server skips it whenever every workflow waits…
  const client = new Client({ connection: env.connection, namespace: env.namespace ?? 'default' });
  await env.connection.testService?.unlockTimeSkipping({});
  const taskQueue = `money-once-${n}-${randomUUID()}`;
  const shard: Shard = {
    n,
    generation,
    env,
    client,
    taskQueue,
    server: undefined as never,
    base: '',
    simNow: Date.now(),
    served: new Map(),
    holds: 0,
    running: new Set(),
    clock: null,
    workers: [],
  };
  void watchClock(shard).catch((err: unknown) => count(`clock watch error: ${String(err)}`.slice(0, 80)));
  const run = (worker: Worker) => {
    const w = { worker, running: worker.run() };
    shard.workers.push(w);
    return w;
  };
  // …but never more than half a day at once when nothing else waits for a time: a recovery waiting
  // for ops (no timer of its own) must not be jumped to its execution timeout, ten years on.
  run(
    await Worker.create({
      connection: env.nativeConnection,
      taskQueue: `${taskQueue}-clock`,
      workflowBundle: clockBundle,
      activities: createFixtureActivities([]),
    }),
  );
  await client.workflow.start('ticker', {
    taskQueue: `${taskQueue}-clock`,
    workflowId: `${taskQueue}-clock`,
    args: [720],
  });
  const app = createGatewaySimulator(
    path.join(mkdtempSync(path.join(tmpdir(), 'money-once-')), 'charges.jsonl'),
    loadRuleTable(),
    {
      now: () => Math.max(Date.now(), shard.simNow),
      keyTtlMs: SIM_KEY_TTL_MS,
      fault: faultFor,
      listingLag: listingLagFor,
    },
  );
  await new Promise<void>((resolve) => {
    shard.server = serve({ fetch: served(shard, app.fetch), hostname: '127.0.0.1', port: 0 }, () => resolve());
  });
  shard.base = `http://127.0.0.1:${(shard.server.address() as AddressInfo).port}`;
  // The workflows run on one worker; the activities on another, which the adversary restarts.
  run(
    await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: bundle,
      maxCachedWorkflows: 500,
      // A recovery leaves its customer's open processes when it closes, as on the real worker.
      sinks: openProcessSinks(graph, () => undefined),
    }),
  );
  shard.restarts = activityWorkerRestarts(shard).catch((err: unknown) =>
    count(`restart error: ${String(err)}`.slice(0, 80)),
  );
  shards.push(shard);
  return shard;
}

/**
 * Worker restarts: now and then the shard's activity worker stops — what it runs is cancelled a
 * moment later, its answers lost (a charge made, its answer never recorded) — and a new one takes over.
 */
async function activityWorkerRestarts(shard: Shard): Promise<void> {
  let current = { worker: await activityWorker(shard), running: undefined as Promise<void> | undefined };
  current.running = current.worker.run();
  shard.workers.push(current);
  const every = streamOf(shard.n + SHARDS * shard.generation, 9);
  while (!done && !shard.retired && process.env.PERSONA_ADVERSARY_RESTARTS !== '0') {
    await sleep(3_000 + every() * 7_000);
    // The test ended (or failed), or the server has no recovery left: no restart.
    if (done || shard.retired || current.worker.getState() !== 'RUNNING') break;
    current.worker.shutdown();
    await current.running;
    current = { worker: await activityWorker(shard), running: undefined };
    current.running = current.worker.run();
    shard.workers.push(current);
    count('worker restart');
  }
}

/**
 * A server with no recovery left stops: its clock workflow's worker first (an idle time-skipping
 * server would only race it), then, once what the adversary still does has settled (for at most
 * half a minute: a decision about a recovery that never ended may never settle), the others. Its
 * gateway stays up for the checks at the end.
 */
function teardown(shard: Shard, settle = true): Promise<void> {
  shard.retired = true;
  shard.tornDown ??= (async () => {
    shard.workers[0]?.worker?.shutdown();
    if (settle) await Promise.race([Promise.allSettled([...pending]), sleep(30_000)]);
    await shard.restarts;
    for (const w of shard.workers) if (w.worker?.getState() === 'RUNNING') w.worker.shutdown();
    for (const w of shard.workers) await w.running?.catch(() => undefined);
    await shard.env.teardown();
  })();
  return shard.tornDown;
}

/**
 * Reads the server's time every CLOCK_EVERY_MS while it runs. A server whose time has not skipped
 * for STUCK_MS is reported once (counted, and what holds it printed: the activities outstanding on
 * its recoveries, longest first, the adversary's own holds and the activity worker's state), so
 * that a run whose recoveries wait on their server names the wait.
 */
async function watchClock(shard: Shard): Promise<void> {
  while (!done && !shard.retired) {
    const time = await shard.env.currentTimeMs().catch(() => null);
    const real = Date.now();
    if (time !== null) {
      const last = shard.clock;
      const skipped = last === null || time - last.time > real - last.real + CLOCK_EVERY_MS;
      shard.clock = {
        real,
        time,
        skippedAt: skipped ? real : (last?.skippedAt ?? real),
        reported: skipped ? false : (last?.reported ?? false),
      };
      if (!shard.clock.reported && real - shard.clock.skippedAt > STUCK_MS) {
        shard.clock.reported = true;
        count('a server held past the stuck window');
        console.log(`[money-moves-once] ${await whatHolds(shard)}`);
      }
    }
    await sleep(CLOCK_EVERY_MS);
  }
}

/** A pending activity's state (temporal.api.enums.v1.PendingActivityState), in words. */
const ACTIVITY_STATES = ['unspecified', 'scheduled', 'started', 'cancel requested', 'paused', 'pause requested'];

/** What holds a server's time: its recoveries' outstanding activities, the adversary's holds, its activity worker. */
async function whatHolds(shard: Shard): Promise<string> {
  const outstanding: { at: number; what: string }[] = [];
  for (const s of shard.running)
    for (const handle of [s.handle, ...s.extraRuns]) {
      const described = await handle?.describe().catch(() => null);
      const task = described?.raw.pendingWorkflowTask;
      if (task)
        outstanding.push({
          at: Number(task.scheduledTime?.seconds ?? 0) * 1000,
          what: `recovery ${s.index} workflow task attempt ${task.attempt ?? '?'}${task.startedTime ? ' started' : ''}`,
        });
      for (const a of described?.raw.pendingActivities ?? []) {
        const at = Number(a.lastStartedTime?.seconds ?? a.lastAttemptCompleteTime?.seconds ?? 0) * 1000;
        const failure = a.lastFailure?.message ? `, last failure: ${a.lastFailure.message.slice(0, 120)}` : '';
        outstanding.push({
          at,
          what:
            `recovery ${s.index} ${a.activityType?.name ?? '?'} attempt ${a.attempt ?? '?'} ` +
            `${ACTIVITY_STATES[a.state ?? 0] ?? '?'}${failure}`,
        });
      }
    }
  outstanding.sort((a, b) => a.at - b.at);
  const worker = shard.workers.at(-1)?.worker?.getState() ?? 'none';
  return (
    `server ${shard.n}.${shard.generation}: no time skipped for ${secondsSince(shard.clock?.skippedAt)} s; ` +
    `${shard.running.size} recoveries under way, ${outstanding.length} workflow tasks and activities outstanding` +
    `${
      outstanding.length
        ? ` (${outstanding
            .slice(0, 5)
            .map((o) => o.what)
            .join('; ')})`
        : ''
    }; ` +
    `${shard.holds} holds for requests in flight; last activity worker ${worker}` +
    (outstanding.length === 0 && shard.holds === 0
      ? ' (nothing outstanding: a lock leaked by a closed workflow, sdk-java#1138, or an unlock lost)'
      : '')
  );
}

/** The activity worker of a shard: the real activities, watched by the adversary. */
function activityWorker(shard: Shard): Promise<Worker> {
  return Worker.create({
    connection: shard.env.nativeConnection,
    taskQueue: shard.taskQueue,
    activities: activities(shard),
    // As on every worker: a domain error a retry cannot fix fails the activity for good, and a
    // "not found" is run once more with its reads on the leader (workers/logging.ts).
    interceptors: { activity: workerInterceptors(new RequestContext()).activity },
    maxConcurrentActivityTaskExecutions: 200,
    shutdownGraceTime: '300 milliseconds',
  });
}

/**
 * Neo4j: a private instance the adversary restarts under the recoveries (the default), or the
 * stack's (PERSONA_ADVERSARY_NEO4J=stack: no restarts).
 */
const OWN_NEO4J = process.env.PERSONA_ADVERSARY_NEO4J !== 'stack';
let neo4j: PrivateNeo4j | undefined;

beforeAll(async () => {
  if (OWN_NEO4J) {
    neo4j = await privateNeo4j({ heap: '1g', pageCacheMb: 512 });
    await neo4j.start();
    const driver = createDriver(neo4j.env);
    try {
      await migrate(driver, neo4j.env.NEO4J_DATABASE, { reportingCurrency: loadConfig().PERSONA_REPORTING_CURRENCY });
    } finally {
      await driver.close();
    }
  }
  graph = openTestGraph(neo4j?.env);
  bundle = await bundleWorkflowCode({
    workflowsPath: PERSONA_WORKFLOWS,
    workflowInterceptorModules: [WORKFLOW_INTERCEPTORS],
  });
  clockBundle = await bundleWorkflowCode({
    workflowsPath: fileURLToPath(new URL('../fixtures/workflows.ts', import.meta.url)),
  });
}, 180_000);

/** The test is over, however it ended: the restarts stop. */
let done = false;

afterAll(async () => {
  done = true;
  for (const shard of shards) {
    await teardown(shard, false);
    await new Promise<void>((resolve) => shard.server.close(() => resolve()));
  }
  await graph?.close();
  await neo4j?.dispose();
});

/** The gateway client the activities charge through, noting when each charge request leaves (the client's clock). */
class WatchedGateway extends HttpPaymentGateway {
  constructor(private readonly shard: Shard) {
    super(shard.base, CLIENT_TIMEOUT_MS);
  }

  override async charge(req: ChargeRequest, options?: GatewayCallOptions) {
    scenarios.get(req.reference)?.sends.push({ at: Date.now(), key: req.idempotency_key });
    const sent = ++servedOf(this.shard, req.idempotency_key).sent;
    try {
      return await super.charge(req, options);
    } finally {
      await holdTimeWhileInFlight(this.shard, req.idempotency_key, sent);
    }
  }
}

let activityCalls = 0;
function activities(shard: Shard) {
  const gateway = new WatchedGateway(shard);
  const recovery = createRecoveryActivities({
    graph,
    gateway,
    cards: gateway,
    updater: gateway,
    networkRules: loadRuleTable(),
    trustThreshold: graph.config.PERSONA_TRUST_THRESHOLD,
    profileRules: profileRules(graph.config),
    chargePolicy: { keyTtlMs: PERSONA_KEY_TTL_MS, settleMs: SETTLE_MS, clientTimeoutMs: CLIENT_TIMEOUT_MS },
  });
  const all = {
    ...recovery,
    ...createNotificationActivities({ graph, notifications: { send: async () => undefined } }),
    /** The real charge; the adversary only watches it. */
    async chargePaymentMethod(a: ChargeAttempt) {
      const s = scenarios.get(a.payment_id);
      let lost = false;
      try {
        return await recovery.chargePaymentMethod(a);
      } catch (err) {
        lost = true;
        throw err;
      } finally {
        if (s) afterCharge(s, a, lost);
      }
    },
  };
  return Object.fromEntries(
    Object.entries(all).map(([name, fn]) => [
      name,
      (...args: unknown[]) => {
        activityCalls++;
        // One clock, as in the world: the gateway's is never behind the clock of an activity that
        // charges or asks it (a settle after skipped time would otherwise find a listing lagging
        // past its window in the gateway's time, and believe "no charge" of a charge made).
        const first = args[0] as { at?: unknown } | undefined;
        const at = typeof first === 'object' && typeof first?.at === 'string' ? first.at : undefined;
        shard.simNow = Math.max(shard.simNow, clockOf(at).getTime());
        return (fn as (...a: unknown[]) => Promise<unknown>)(...args);
      },
    ]),
  ) as typeof all;
}

describe('money moves once, against an adversary', () => {
  it(
    `at most one charge per payment, the graph agreeing with the gateway, every recovery ending (seed ${SEED})`,
    async () => {
      console.log(
        `[money-moves-once] seed ${SEED}: ` +
          `${ONLY.length ? `${ONLY.length} recoveries (${ONLY_SPEC})` : `${RECOVERIES} recoveries`}, ` +
          `${IN_FLIGHT} at a time on each of ${SHARDS} time-skipping servers side by side ` +
          `(a fresh one every ${RECYCLE_EVERY} recoveries). ` +
          `Replay: PERSONA_ADVERSARY_SEED=${SEED} npx vitest run --project integration ` +
          'test/integration/money-moves-once.test.ts',
      );
      const started = performance.now();
      done = false;

      // Neo4j restarts: now and then the private Neo4j stops (cleanly) and starts again under the
      // recoveries: transactions in flight fail and are retried, activities wait it out.
      let neo4jDownMs = 0;
      const neo4jRestarts = (async () => {
        if (!neo4j || process.env.PERSONA_ADVERSARY_NEO4J_RESTARTS === '0') return;
        const every = streamOf(RECOVERIES, 10);
        while (!done) {
          const wait = 80_000 + every() * 60_000;
          for (let waited = 0; waited < wait && !done; waited += 500) await sleep(500);
          if (done) break;
          const began = performance.now();
          await neo4j.stop();
          await neo4j.start();
          neo4jDownMs += performance.now() - began;
          count('neo4j restart');
        }
      })();
      const indexes = ONLY.length ? ONLY : Array.from({ length: RECOVERIES }, (_, i) => i);
      const results: Awaited<ReturnType<typeof runOne>>[] = [];
      let finished = 0;
      const progress = setInterval(
        () =>
          console.log(
            `[money-moves-once] ${finished}/${indexes.length} ended after ` +
              `${((performance.now() - started) / 1000).toFixed(0)} s, ${activityCalls} activities; ` +
              `adversary so far: ${JSON.stringify(tally)}`,
          ),
        15_000,
      );
      // Each place side by side takes the recoveries whose index falls to it, IN_FLIGHT at a time,
      // on a fresh server every RECYCLE_EVERY (the next one starts while the last of the old end).
      await Promise.all(
        Array.from({ length: SHARDS }, async (_, n) => {
          const mine = indexes.filter((i) => i % SHARDS === n);
          let next = 0;
          let generation = 0;
          let current = { shard: startShard(n, generation), given: 0, running: 0 };
          const leave = (g: typeof current) => {
            if (g.given >= RECYCLE_EVERY && g.running === 0)
              void g.shard
                .then((shard) => teardown(shard))
                .catch((err: unknown) => count(`teardown error: ${String(err)}`.slice(0, 80)));
          };
          await Promise.all(
            Array.from({ length: Math.min(IN_FLIGHT, mine.length) }, async () => {
              while (next < mine.length) {
                const index = mine[next++] as number;
                if (current.given === RECYCLE_EVERY)
                  current = { shard: startShard(n, ++generation), given: 0, running: 0 };
                const g = current;
                g.given++;
                g.running++;
                try {
                  const result = await runOne(index, await g.shard);
                  results.push(result);
                  // Printed as it comes: a run cut short by its timeout still names it.
                  if (result.problem)
                    console.log(`[money-moves-once] seed ${SEED}: recovery ${index}: ${result.problem}`);
                } finally {
                  g.running--;
                  leave(g);
                }
                finished++;
              }
            }),
          );
          await teardown(await current.shard);
        }),
      );
      done = true;
      clearInterval(progress);
      await neo4jRestarts;
      // What the adversary still does settles (a decision about a recovery that never ended may not).
      await Promise.race([Promise.allSettled(pending), sleep(60_000)]);
      await Promise.all(shards.map((shard) => teardown(shard)));
      // The gateways' clocks stopped with their servers' last activity: moved past every listing
      // lag and every charge still processing, the checks read what each gateway made, settled.
      for (const shard of shards) shard.simNow = Math.max(shard.simNow, Date.now()) + LISTING_LAG_MAX_MS + 60_000;
      const seconds = (performance.now() - started) / 1000;

      const problems: string[] = [];
      const states: Tally = {};
      // Every recovery checked against the gateway's records, ten at a time.
      let checked = 0;
      await Promise.all(
        Array.from({ length: 10 }, async () => {
          while (checked < results.length) {
            const { s, status, problem } = results[checked++] as (typeof results)[number];
            const where = `recovery ${s.index} (${s.payment_id}; did: ${s.did.join(', ') || 'nothing'})`;
            if (problem || !status) {
              problems.push(`${where}: ${problem ?? 'no status'}`);
              continue;
            }
            states[status.state] = (states[status.state] ?? 0) + 1;
            const charges = await new HttpPaymentGateway(s.shard.base, 10_000).chargesByReference(s.payment_id);
            const ledger = await readRecoveryLedger(graph, s.payment_id);
            for (const p of check(status, charges, ledger)) problems.push(`${where}: ${p}`);
            // A stop is a stop: no charge request of the payment left after a stop was accepted, but
            // one the ledger stamped before the stop committed (on its way then: a stop recalls nothing).
            const late = s.stopAcceptedAt === undefined ? [] : s.sends.filter((r) => r.at > (s.stopAcceptedAt ?? 0));
            const stopAt = Date.parse(ledger?.recovery.stop_requested_at ?? '');
            const stampedBefore = (key: string) => {
              const a = ledger?.attempts.find((x) => x.key === key);
              return a !== undefined && Date.parse(a.last_sent_at ?? a.created_at) < stopAt;
            };
            const afterStop = late.filter((r) => !stampedBefore(r.key));
            if (late.length > afterStop.length) count('a request on its way at the stop');
            if (afterStop.length > 0)
              problems.push(
                `${where}: ${afterStop.length} charge request(s) stamped and sent after the stop was accepted ` +
                  `(${afterStop.map((r) => `${r.key} ${r.at - (s.stopAcceptedAt ?? 0)} ms after`).join(', ')})`,
              );
            for (const other of s.extraEnds ?? [])
              if (other.state !== ledger?.recovery.state)
                problems.push(
                  `${where}: a run beside it ended ${other.state}, the ledger says ${ledger?.recovery.state}`,
                );
            for (const p of ownerTold(await s.owner?.catch((err: unknown) => String(err)), charges))
              problems.push(`${where}: ${p}`);
            // Reported again (Synapse redelivers): the ledger has it, so nothing starts.
            const again = await reserveRecovery(graph, s.failure);
            if (again.created || again.recovery.state === 'recovering')
              problems.push(`${where}: a second report would start it again (${again.recovery.state})`);
          }
        }),
      );
      console.log(
        `[money-moves-once] seed ${SEED}: ${results.length} recoveries in ${seconds.toFixed(1)} s ` +
          `(${(results.length / seconds).toFixed(1)} recoveries/s): ${JSON.stringify(states)}; ` +
          `adversary: ${JSON.stringify(tally)}; Neo4j down ${(neo4jDownMs / 1000).toFixed(1)} s in all; ` +
          `${shards.length} time-skipping servers in all; ` +
          `${problems.length} problems`,
      );
      // Printed as soon as they are known: a run cut short (or read before vitest's summary) still shows them.
      for (const p of problems.slice(0, 20)) console.log(`[money-moves-once] seed ${SEED}: problem: ${p}`);
      expect(problems.slice(0, 20)).toEqual([]);
      expect(results).toHaveLength(indexes.length);
    },
    // 2,000 recoveries took 675 to 915 s on two shared cores whose commits queue (9 ms each, one at a time).
    Number(process.env.PERSONA_ADVERSARY_TIMEOUT_MS ?? 1_500_000),
  );
});
