/**
 * The payment gateway, as activities see it. Every charge carries an idempotency key, so a
 * retried charge is the same charge. A decline is a business outcome (returned, never retried);
 * a 5xx, a timeout or a network error is transient (thrown, and retried by Temporal with backoff).
 */
export type ChargeResult =
  { outcome: 'succeeded'; charge_id: string } | { outcome: 'declined'; decline_code: string; charge_id: string | null };

export interface ChargeRequest {
  idempotency_key: string;
  token: string;
  amount: number;
  currency: string;
  customer_id: string;
}

export interface PaymentGateway {
  charge(req: ChargeRequest): Promise<ChargeResult>;
}

/** The gateway did not give an answer (5xx, timeout, network): try again later. */
export class GatewayUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GatewayUnavailableError';
  }
}

/** The gateway refused the request itself (4xx other than a decline): retrying cannot help. */
export class GatewayRejectedError extends Error {
  constructor(status: number, detail: string) {
    super(`the gateway refused the charge request (${status}): ${detail}`);
    this.name = 'GatewayRejectedError';
  }
}

export class HttpPaymentGateway implements PaymentGateway {
  constructor(
    private readonly baseUrl: string,
    private readonly timeoutMs = 10_000,
  ) {}

  async charge(req: ChargeRequest): Promise<ChargeResult> {
    let res: Response;
    try {
      res = await fetch(new URL('/v1/charges', this.baseUrl), {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': req.idempotency_key },
        body: JSON.stringify({
          token: req.token,
          amount: req.amount,
          currency: req.currency,
          customer_id: req.customer_id,
        }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      // Never echo the request: it holds the token.
      throw new GatewayUnavailableError(`no answer from the gateway: ${err instanceof Error ? err.name : 'error'}`);
    }
    const body = (await res.json().catch(() => ({}))) as {
      id?: string;
      error?: { code?: string; decline_code?: string; charge?: string };
    };
    if (res.status === 200 && body.id) return { outcome: 'succeeded', charge_id: body.id };
    if (res.status === 402 && body.error?.decline_code) {
      return { outcome: 'declined', decline_code: body.error.decline_code, charge_id: body.error.charge ?? null };
    }
    if (res.status >= 500 || res.status === 429 || res.status === 408)
      throw new GatewayUnavailableError(`the gateway answered ${res.status}`);
    throw new GatewayRejectedError(res.status, body.error?.code ?? 'unknown');
  }
}
