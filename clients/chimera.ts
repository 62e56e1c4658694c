/**
 * Chimera, the fraud agent, builds a behavioural profile for each new customer. Persona asks
 * through this interface: over HTTP when CHIMERA_URL is set, otherwise through a local stand-in
 * that records each request as an event (so a developer machine needs no Chimera).
 */
import { ConflictError } from '../graph/errors';
import { appendEvent } from '../graph/events';
import { writeTx, type Graph } from '../graph/graph';

export interface BehavioralProfileRequest {
  customer_id: string;
  onboarding_id: string;
  /** Stable per request: Chimera deduplicates on it, so a retry creates no second profile. */
  request_id: string;
}

export interface ChimeraClient {
  requestBehavioralProfile(req: BehavioralProfileRequest): Promise<{ reference: string }>;
}

/** Chimera refused the request (4xx other than 408/429): retrying cannot help. */
export class ChimeraRejectedError extends Error {
  constructor(readonly status: number, detail: string) {
    super(`Chimera refused the behavioural-profile request (${status}): ${detail}`);
    this.name = 'ChimeraRejectedError';
  }
}

export class HttpChimeraClient implements ChimeraClient {
  constructor(
    private readonly baseUrl: string,
    private readonly timeoutMs = 5000,
  ) {}

  async requestBehavioralProfile(req: BehavioralProfileRequest): Promise<{ reference: string }> {
    const res = await fetch(new URL('/v1/behavioral-profiles', this.baseUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': req.request_id },
      body: JSON.stringify({ customer_id: req.customer_id, onboarding_id: req.onboarding_id }),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const text = await res.text();
    if (res.ok) {
      const body = (text ? JSON.parse(text) : {}) as { reference?: string; id?: string };
      return { reference: body.reference ?? body.id ?? req.request_id };
    }
    if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
      throw new ChimeraRejectedError(res.status, text.slice(0, 200));
    }
    throw new Error(`Chimera answered ${res.status}`);
  }
}

/** Records the request as a BehavioralProfileRequested event, once per request id. */
export class LocalChimeraClient implements ChimeraClient {
  constructor(private readonly graph: Graph) {}

  async requestBehavioralProfile(req: BehavioralProfileRequest): Promise<{ reference: string }> {
    const reference = `local:${req.request_id}`;
    try {
      await writeTx(this.graph, (tx) =>
        appendEvent(
          tx,
          'BehavioralProfileRequested',
          req.customer_id,
          { onboarding_id: req.onboarding_id, reference, via: 'local' },
          { idempotencyKey: `behavioral-profile:${req.request_id}` },
        ),
      );
    } catch (err) {
      // Already recorded by an earlier attempt of the same request: that is success.
      if (!(err instanceof ConflictError)) throw err;
    }
    return { reference };
  }
}

export function createChimeraClient(chimeraUrl: string | undefined, graph: Graph): ChimeraClient {
  return chimeraUrl ? new HttpChimeraClient(chimeraUrl) : new LocalChimeraClient(graph);
}
