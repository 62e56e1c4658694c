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

/** A checkout saw the customer on one of its trusted devices (at most one report per day). */
export interface TrustedDeviceSighting {
  customer_id: string;
  device_id: string;
  /** The day (YYYY-MM-DD, UTC) of the sighting. */
  seen_on: string;
  request_id: string;
}

export interface ChimeraClient {
  requestBehavioralProfile(req: BehavioralProfileRequest): Promise<{ reference: string }>;
  reportTrustedDevice(sighting: TrustedDeviceSighting): Promise<void>;
}

/** Chimera refused the request (4xx other than 408/429): retrying cannot help. */
export class ChimeraRejectedError extends Error {
  constructor(
    readonly status: number,
    detail: string,
  ) {
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
    const text = await this.post('/v1/behavioral-profiles', req.request_id, {
      customer_id: req.customer_id,
      onboarding_id: req.onboarding_id,
    });
    const body = (text ? JSON.parse(text) : {}) as { reference?: string; id?: string };
    return { reference: body.reference ?? body.id ?? req.request_id };
  }

  async reportTrustedDevice(s: TrustedDeviceSighting): Promise<void> {
    await this.post('/v1/trusted-device-sightings', s.request_id, {
      customer_id: s.customer_id,
      device_id: s.device_id,
      seen_on: s.seen_on,
    });
  }

  /** POSTs JSON with an idempotency key; 4xx (but 408/429) is final, anything else retryable. */
  private async post(path: string, idempotencyKey: string, body: unknown): Promise<string> {
    const res = await fetch(new URL(path, this.baseUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': idempotencyKey },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const text = await res.text();
    if (res.ok) return text;
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
    await this.recordOnce('BehavioralProfileRequested', req.customer_id, `behavioral-profile:${req.request_id}`, {
      onboarding_id: req.onboarding_id,
      reference,
    });
    return { reference };
  }

  async reportTrustedDevice(s: TrustedDeviceSighting): Promise<void> {
    await this.recordOnce('TrustedDeviceReported', s.customer_id, `trusted-device:${s.request_id}`, {
      device_id: s.device_id,
      seen_on: s.seen_on,
    });
  }

  private async recordOnce(
    type: 'BehavioralProfileRequested' | 'TrustedDeviceReported',
    customerId: string,
    key: string,
    payload: Record<string, unknown>,
  ) {
    try {
      await writeTx(this.graph, (tx) =>
        appendEvent(tx, type, customerId, { ...payload, via: 'local' }, { idempotencyKey: key }),
      );
    } catch (err) {
      // Already recorded by an earlier attempt of the same request: that is success.
      if (!(err instanceof ConflictError)) throw err;
    }
  }
}

export function createChimeraClient(chimeraUrl: string | undefined, graph: Graph): ChimeraClient {
  return chimeraUrl ? new HttpChimeraClient(chimeraUrl) : new LocalChimeraClient(graph);
}
