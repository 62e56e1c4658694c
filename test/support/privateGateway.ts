/**
 * A gateway simulator of a test's own, in this process: the same processor as the stack's, with
 * faults chosen per request by the test (by the payment a request is for, its key and how many
 * requests of it came before) and every charge request's arrival seen, on the real clock — what a
 * test compares with the moment a stop was accepted. The stack's simulator is shared by every
 * test; its fault counters take whichever requests come next.
 */
import { mkdtempSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { createGatewaySimulator, type ChargeFault } from '../../simulators/gateway/app';
import { loadRuleTable } from '../../payments/ruleTables';
import { startHarness, type Harness } from './api';
import type { StrandedDeps } from '../../activities/strandedRecoveries';
import { HttpPaymentGateway } from '../../clients/paymentGateway';
import { profileRules } from '../../config/env';

/** A charge request as it arrived: its key, what it is for, and when (ms, the real clock). */
export interface ChargeRequestSeen {
  key: string;
  reference: string | null;
  at: number;
}

/** What the test answers a request with: a fault of the simulator's, a refusal before it, or nothing. */
export type PlannedAnswer = ChargeFault | { kind: 'refuse'; status: number; code: string } | null;

export interface PrivateGateway {
  url: string;
  /** Every charge request that arrived, in order. */
  seen: ChargeRequestSeen[];
  /** The requests that arrived for a payment (its reference). */
  requestsFor(reference: string): ChargeRequestSeen[];
  /**
   * How the requests of a payment are answered from now on: asked with the request and how many
   * requests of the payment (and of its key) came before it; null lets the processor answer.
   */
  plan(reference: string, answer: (req: { key: string; n: number; nOfKey: number }) => PlannedAnswer): void;
  close(): Promise<void>;
}

export async function privateGateway(options: { keyTtlMs?: number } = {}): Promise<PrivateGateway> {
  const seen: ChargeRequestSeen[] = [];
  const plans = new Map<string, (req: { key: string; n: number; nOfKey: number }) => PlannedAnswer>();
  const answerOf = (key: string, reference: string | null): PlannedAnswer => {
    const plan = reference ? plans.get(reference) : undefined;
    if (!plan) return null;
    const earlier = seen.filter((s) => s.reference === reference);
    return plan({ key, n: earlier.length - 1, nOfKey: earlier.filter((s) => s.key === key).length - 1 });
  };
  const app = createGatewaySimulator(
    path.join(mkdtempSync(path.join(tmpdir(), 'private-gateway-')), 'charges.jsonl'),
    loadRuleTable(),
    {
      ...(options.keyTtlMs ? { keyTtlMs: options.keyTtlMs } : {}),
      // Asked for requests that would make or replay a charge; refusals are answered before (below).
      fault: ({ idempotency_key, reference }) => {
        const planned = answerOf(idempotency_key, reference);
        return planned && planned.kind !== 'refuse' ? planned : null;
      },
    },
  );
  // In front of the processor: every charge request seen as it arrives, and refused when planned.
  const front = async (req: Request, env: unknown): Promise<Response> => {
    if (req.method === 'POST' && new URL(req.url).pathname === '/v1/charges') {
      const body = (await req
        .clone()
        .json()
        .catch(() => ({}))) as { reference?: string };
      const key = req.headers.get('idempotency-key') ?? '';
      seen.push({ key, reference: body.reference ?? null, at: Date.now() });
      const planned = answerOf(key, body.reference ?? null);
      // Seen twice by the plan (here and in the simulator's hook) only when it is no refusal.
      if (planned?.kind === 'refuse') {
        return new Response(JSON.stringify({ error: { code: planned.code, message: 'refused by the test' } }), {
          status: planned.status,
          headers: { 'content-type': 'application/json' },
        });
      }
    }
    return app.fetch(req, env);
  };
  let server: ServerType | undefined;
  await new Promise<void>((resolve) => {
    server = serve({ fetch: front, hostname: '127.0.0.1', port: 0 }, () => resolve());
  });
  const url = `http://127.0.0.1:${((server as ServerType).address() as AddressInfo).port}`;
  return {
    url,
    seen,
    requestsFor: (reference) => seen.filter((s) => s.reference === reference),
    plan: (reference, answer) => void plans.set(reference, answer),
    close: () => new Promise<void>((resolve) => (server as ServerType).close(() => resolve())),
  };
}

/**
 * A harness (test/support/api.ts) whose worker charges a gateway of the file's own, "no charge"
 * believed `settleMs` after a key's last request (seconds here, where production waits minutes).
 */
export async function harnessOnPrivateGateway(
  settleMs: number,
): Promise<{ h: Harness; gw: PrivateGateway; close: () => Promise<void> }> {
  const gw = await privateGateway();
  const h = await startHarness({
    gateway: { url: gw.url, chargePolicy: { keyTtlMs: 24 * 3_600_000, settleMs, clientTimeoutMs: 3_000 } },
  });
  return {
    h,
    gw,
    close: async () => {
      await h.close();
      await gw.close();
    },
  };
}

/** What `settleStrandedRecoveries` needs, as ops' command builds it, on a harness and its private gateway. */
export function strandedDeps(h: Harness, gw: PrivateGateway, settleMs: number): StrandedDeps {
  return {
    graph: h.graph,
    gateway: new HttpPaymentGateway(gw.url, 5_000),
    temporal: h.client,
    settleMs,
    profileRules: profileRules(h.graph.config),
  };
}
