/**
 * The fleet's clients: every request the load makes goes through here, so that what each client saw
 * (the status, when, and through which balancer) is kept for the fault windows' figures, and a
 * client retries as the platform's agents do — the same idempotency key, a short backoff — on what a
 * fault answers (a dropped connection, 502/503/504), never on an answer it must act on.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import type { PersonaAgentClient } from '../../proto/generated/persona/v1/PersonaAgent';
import { bearer, call, personaClient } from '../support/grpc';

export type Route = 'by customer' | 'round robin' | 'direct';

export interface Seen {
  at: number;
  kind: string;
  route: Route;
  /** 0: no answer (the connection failed or the request timed out). */
  status: number;
  ms: number;
  /** A failed answer's problem title and detail (or the error), for the fault figures. */
  why?: string;
}

export interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

/** What a gRPC status is to the fault figures: the HTTP status a REST caller would have seen. */
const GRPC_AS_HTTP: Partial<Record<grpc.status, number>> = {
  [grpc.status.OK]: 200,
  [grpc.status.UNAVAILABLE]: 503,
  [grpc.status.DEADLINE_EXCEEDED]: 0,
  [grpc.status.NOT_FOUND]: 404,
  [grpc.status.INVALID_ARGUMENT]: 400,
  [grpc.status.PERMISSION_DENIED]: 403,
  [grpc.status.UNAUTHENTICATED]: 401,
  [grpc.status.RESOURCE_EXHAUSTED]: 429,
  [grpc.status.FAILED_PRECONDITION]: 409,
};

export class FleetClient {
  readonly seen: Seen[] = [];
  readonly #grpc = new Map<string, PersonaAgentClient>();

  constructor(private readonly token: string) {}

  /**
   * One gRPC call through `address` (a balancer's h2c listener), kept in `seen` with the status a
   * REST caller would have had (UNAVAILABLE as 503, a deadline or a reset stream as no answer,
   * any other INTERNAL and the unknown as 500).
   */
  async grpcOnce(
    kind: string,
    route: Route,
    address: string,
    method: 'GetCustomerContext' | 'GetCheckoutOptions',
    customerId: string,
  ): Promise<Answer> {
    let stub = this.#grpc.get(address);
    if (!stub) this.#grpc.set(address, (stub = personaClient(address)));
    const metadata = bearer(this.token);
    metadata.set('x-persona-customer', customerId);
    const started = Date.now();
    const t0 = performance.now();
    const r = await call(stub, method, { customer_id: customerId }, metadata, { deadline: Date.now() + 10_000 });
    // A stream the balancer reset before any status (its replica killed mid-call): grpc-js says
    // INTERNAL, but nothing answered — what a REST caller sees as a dropped connection.
    const reset = r.code === grpc.status.INTERNAL && /RST_STREAM/.test(r.details ?? '');
    const status = reset ? 0 : (GRPC_AS_HTTP[r.code] ?? 500);
    const why = status === 0 || status >= 500 ? `${grpc.status[r.code]}: ${r.details ?? ''}` : undefined;
    this.seen.push({ at: started, kind, route, status, ms: performance.now() - t0, why });
    return { status, body: (r.res ?? { detail: r.details }) as Record<string, unknown>, headers: new Headers() };
  }

  /** Closes the gRPC channels. */
  close(): void {
    for (const stub of this.#grpc.values()) stub.close();
  }

  /** One request, kept in `seen`. `base` is a balancer's or an api's REST base. */
  async once(
    kind: string,
    route: Route,
    base: string,
    method: string,
    path: string,
    options: { customerId?: string; body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<Answer> {
    const started = Date.now();
    const t0 = performance.now();
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, ...options.headers };
    if (options.customerId) headers['x-persona-customer'] = options.customerId;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    let answer: Answer;
    try {
      const res = await fetch(`${base}${path}`, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      let body: Record<string, unknown> = {};
      try {
        body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
      } catch {
        body = { text: text.slice(0, 200) };
      }
      answer = { status: res.status, body, headers: res.headers };
    } catch (err) {
      answer = { status: 0, body: { error: err instanceof Error ? err.message : String(err) }, headers: new Headers() };
    }
    const failed = answer.status === 0 || answer.status >= 500;
    const why = failed
      ? [answer.body.title, answer.body.detail, answer.body.error, answer.body.text].filter(Boolean).join(': ')
      : undefined;
    this.seen.push({ at: started, kind, route, status: answer.status, ms: performance.now() - t0, why });
    return answer;
  }

  /**
   * The request again, with the same body (so the same idempotency key), while a fault answers for
   * it, up to `withinMs`; the last answer otherwise.
   */
  async retried(
    kind: string,
    route: Route,
    base: string,
    method: string,
    path: string,
    options: { customerId?: string; body?: unknown; headers?: Record<string, string>; withinMs?: number } = {},
  ): Promise<Answer & { tries: number }> {
    const deadline = Date.now() + (options.withinMs ?? 120_000);
    let backoff = 100;
    for (let tries = 1; ; tries++) {
      const answer = await this.once(kind, route, base, method, path, options);
      if (![0, 502, 503, 504].includes(answer.status) || Date.now() > deadline) return { ...answer, tries };
      await sleep(backoff);
      backoff = Math.min(2_000, backoff * 2);
    }
  }
}

/** Nearest-rank percentile of `xs` (NaN when empty). */
export function percentile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}
