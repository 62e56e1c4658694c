/**
 * The payment gateway, as activities see it. Every charge carries an idempotency key, so a
 * retried charge is the same charge. A decline is a business outcome (returned, never retried);
 * a 5xx, a timeout, a network error or a charge still `processing` leaves the outcome unknown
 * (thrown, and retried by Temporal with backoff: the same key, until the charge has settled).
 */
/**
 * What the card network adds to an answer (null where the processor sent nothing): the network,
 * the card's fingerprint (one per card identity, whatever its token), and on a decline Visa's
 * response code and category or Mastercard's Merchant Advice Code.
 */
export interface NetworkFacts {
  network: string | null;
  fingerprint: string | null;
}
export interface DeclineFacts extends NetworkFacts {
  network_response_code: string | null;
  category: number | null;
  advice_code: string | null;
}

export type ChargeResult =
  | ({ outcome: 'succeeded'; charge_id: string } & Partial<NetworkFacts>)
  | ({ outcome: 'declined'; decline_code: string; charge_id: string | null } & Partial<DeclineFacts>);

export interface ChargeRequest {
  idempotency_key: string;
  token: string;
  amount: number;
  currency: string;
  customer_id: string;
  /** `mit`: merchant-initiated (a recovery's retry); `cit`: the cardholder is there. */
  initiator: 'cit' | 'mit';
  /** What the charge is for (the payment id): the gateway keeps it, and lists charges by it. */
  reference: string;
}

/** A call's limits: the caller's signal (an activity's cancellation) and its own timeout. */
export interface GatewayCallOptions {
  signal?: AbortSignal;
  /** Default: the gateway client's timeout. */
  timeoutMs?: number;
}

/** The account updater's answer about one card. */
export type UpdaterAnswer =
  | { status: 'no_change' | 'closed' }
  | { status: 'updated'; expiry_month: number; expiry_year: number }
  | { status: 'replaced'; token: string; expiry_month: number; expiry_year: number };

/** The processor naming a token's card: its network and fingerprint (null when it cannot). */
export interface CardDescriber {
  describe(token: string): Promise<{ network: string; fingerprint: string } | null>;
}

export interface AccountUpdater {
  lookup(token: string): Promise<UpdaterAnswer>;
}

export interface PaymentGateway {
  charge(req: ChargeRequest, options?: GatewayCallOptions): Promise<ChargeResult>;
  /** Every charge the gateway made with this reference, in the order made (a read: nothing is charged). */
  chargesByReference(reference: string, options?: GatewayCallOptions): Promise<GatewayCharge[]>;
}

/** One charge as the gateway recorded it (its own record: the authority on what was charged). */
export interface GatewayCharge {
  id: string;
  idempotency_key: string;
  customer_id: string;
  amount: number;
  currency: string;
  /** `processing`: the charge is made and its outcome not known yet (it has not ended: ask again later). */
  status: 'succeeded' | 'declined' | 'processing';
  decline_code: string | null;
  created_at: string;
  /** What the charge was for (the payment id); null when the gateway has none. */
  reference: string | null;
}

/** A token's standing at the issuer, as the gateway knows it. */
export type GatewayTokenStatus = 'active' | 'revoked';

/** The gateway's records, for reconciliation (read only: nothing here charges). */
export interface GatewayRecords {
  /** Charges made from `created_gte` on, in the order made, a page at a time after `starting_after`. */
  listCharges(req: {
    created_gte: string;
    starting_after: string | null;
    limit: number;
  }): Promise<{ data: GatewayCharge[]; has_more: boolean }>;
  /** One charge by id, or null when the gateway has none. */
  getCharge(id: string): Promise<GatewayCharge | null>;
  /** Each token's standing, in the order asked (at most 100). */
  tokenStatuses(tokens: string[]): Promise<GatewayTokenStatus[]>;
}

/**
 * The gateway did not give an answer (5xx, timeout, network), or the charge's outcome is not known
 * yet (it is `processing`): try again later, with the same key.
 */
export class GatewayUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GatewayUnavailableError';
  }
}

/**
 * Another request with the same idempotency key is being processed at the gateway (409
 * `idempotency_key_in_flight`): nothing was charged by this one; try again once that one is answered.
 */
export class GatewayInFlightError extends GatewayUnavailableError {
  constructor(message: string) {
    super(message);
    this.name = 'GatewayInFlightError';
  }
}

/** The gateway refused the request itself (4xx other than a decline): retrying cannot help. */
export class GatewayRejectedError extends Error {
  /**
   * @param status the HTTP status the gateway answered
   * @param code the error code of its answer (`unknown` when it gave none)
   * @param detail what the message says instead of the code (never anything of the request)
   */
  constructor(
    readonly status: number,
    readonly code: string,
    detail?: string,
  ) {
    super(`the gateway refused the charge request (${status}): ${detail ?? code}`);
    this.name = 'GatewayRejectedError';
  }
}

/** A charge record as the gateway lists it, with `reference` null when it has none. */
/**
 * A charge as listed. Only `succeeded` and `declined` are ended; any other status (`processing`,
 * a processor's `pending` or `requires_capture`, one it adds later) is read as `processing`: not
 * ended, asked again later — never as "charged nothing".
 */
const chargeOf = (c: GatewayCharge): GatewayCharge => ({
  ...c,
  status: c.status === 'succeeded' || c.status === 'declined' ? c.status : 'processing',
  reference: c.reference ?? null,
});

export class HttpPaymentGateway implements PaymentGateway, GatewayRecords, AccountUpdater, CardDescriber {
  constructor(
    private readonly baseUrl: string,
    private readonly timeoutMs = 10_000,
  ) {}

  /** The signal of one call: the caller's (if any) and the call's timeout, whichever aborts first. */
  private signal(options?: GatewayCallOptions): AbortSignal {
    const timeout = AbortSignal.timeout(options?.timeoutMs ?? this.timeoutMs);
    return AbortSignal.any(options?.signal ? [options.signal, timeout] : [timeout]);
  }

  async charge(req: ChargeRequest, options?: GatewayCallOptions): Promise<ChargeResult> {
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
          initiator: req.initiator,
          reference: req.reference,
        }),
        signal: this.signal(options),
        // Never followed: a redirect would carry the card token to wherever it points, http:// included.
        redirect: 'error',
      });
    } catch (err) {
      // Never echo the request: it holds the token.
      throw new GatewayUnavailableError(`no answer from the gateway: ${err instanceof Error ? err.name : 'error'}`);
    }
    type Answer = {
      id?: string;
      status?: string;
      network?: string;
      fingerprint?: string;
      error?: { code?: string; decline_code?: string; charge?: string } & Partial<DeclineFacts>;
    };
    let body: Answer;
    try {
      body = (await res.json()) as Answer;
    } catch (err) {
      // An answer that could not be read (cut off, aborted, not JSON) says nothing of the charge.
      throw new GatewayUnavailableError(
        `the gateway's answer (${res.status}) could not be read: ${err instanceof Error ? err.name : 'error'}`,
      );
    }
    if (res.status === 200 && body.id && body.status === 'processing')
      // Made, and not ended: neither a success nor a decline until it settles (the key's replay says which).
      throw new GatewayUnavailableError(
        'the gateway is still processing the charge (200 processing): its outcome is not known yet',
      );
    if (res.status === 200 && body.id && body.status === 'succeeded')
      return {
        outcome: 'succeeded',
        charge_id: body.id,
        network: body.network ?? null,
        fingerprint: body.fingerprint ?? null,
      };
    if (res.status === 402 && body.error?.decline_code) {
      const e = body.error;
      return {
        outcome: 'declined',
        decline_code: e.decline_code as string,
        charge_id: e.charge ?? null,
        network: e.network ?? null,
        fingerprint: e.fingerprint ?? null,
        network_response_code: e.network_response_code ?? null,
        category: e.category ?? null,
        advice_code: e.advice_code ?? null,
      };
    }
    if (res.status === 409 && body.error?.code === 'idempotency_key_in_flight')
      throw new GatewayInFlightError('the gateway is still processing a request with this idempotency key (409)');
    // Only a refusal of the request itself (a 4xx other than 402, 408, 409 and 429, with its error
    // code) is known to have charged nothing; anything else — a 5xx, a success or a decline the
    // client cannot read, a status it does not know (HTTP, or the charge's) — leaves the outcome unknown.
    const refusal = res.status >= 400 && res.status < 500 && ![402, 408, 409, 429].includes(res.status);
    if (!refusal || !body.error?.code) throw new GatewayUnavailableError(`the gateway answered ${res.status}`);
    throw new GatewayRejectedError(res.status, body.error.code);
  }

  async listCharges(req: { created_gte: string; starting_after: string | null; limit: number }) {
    const url = new URL('/v1/charges', this.baseUrl);
    url.searchParams.set('created_gte', req.created_gte);
    url.searchParams.set('limit', String(req.limit));
    if (req.starting_after) url.searchParams.set('starting_after', req.starting_after);
    const page = (await this.read(url)) as { data: GatewayCharge[]; has_more: boolean };
    return { data: page.data.map(chargeOf), has_more: page.has_more };
  }

  async getCharge(id: string): Promise<GatewayCharge | null> {
    const found = (await this.read(
      new URL(`/v1/charges/${encodeURIComponent(id)}`, this.baseUrl),
      true,
    )) as GatewayCharge | null;
    return found && chargeOf(found);
  }

  /**
   * Every charge with this reference, in the order made, a page (of 1000) after another. The
   * options bound the whole call, every page of it.
   */
  async chargesByReference(reference: string, options?: GatewayCallOptions): Promise<GatewayCharge[]> {
    const signal = this.signal(options);
    const all: GatewayCharge[] = [];
    let after: string | null = null;
    for (;;) {
      const url = new URL('/v1/charges', this.baseUrl);
      url.searchParams.set('reference', reference);
      url.searchParams.set('limit', '1000');
      if (after) url.searchParams.set('starting_after', after);
      const page = (await this.read(url, false, undefined, signal)) as { data: GatewayCharge[]; has_more: boolean };
      all.push(...page.data.map(chargeOf));
      if (!page.has_more) return all;
      after = page.data.at(-1)?.id ?? null;
      if (!after) throw new GatewayUnavailableError('the gateway answered an empty page with more to come');
    }
  }

  async tokenStatuses(tokens: string[]): Promise<GatewayTokenStatus[]> {
    const body = (await this.read(new URL('/v1/payment_methods/status', this.baseUrl), false, { tokens })) as {
      data: { status: GatewayTokenStatus }[];
    };
    if (body.data.length !== tokens.length)
      throw new GatewayUnavailableError('the gateway answered a short status list');
    return body.data.map((d) => d.status);
  }

  async describe(token: string): Promise<{ network: string; fingerprint: string } | null> {
    const body = (await this.read(new URL('/v1/payment_methods/status', this.baseUrl), false, { tokens: [token] })) as {
      data?: { network?: string; fingerprint?: string }[];
    };
    const d = body.data?.[0];
    return d?.network && d.fingerprint ? { network: d.network, fingerprint: d.fingerprint } : null;
  }

  /** Asks the network's account updater about a card (a read: asking twice is harmless). */
  async lookup(token: string): Promise<UpdaterAnswer> {
    const body = (await this.read(new URL('/v1/account_updater/lookups', this.baseUrl), false, { token })) as {
      status?: string;
    } & Record<string, unknown>;
    const { status } = body;
    if (status === 'no_change' || status === 'closed') return { status };
    const expiry = { expiry_month: Number(body.expiry_month), expiry_year: Number(body.expiry_year) };
    const validExpiry =
      Number.isInteger(expiry.expiry_month) &&
      expiry.expiry_month >= 1 &&
      expiry.expiry_month <= 12 &&
      Number.isInteger(expiry.expiry_year);
    if (status === 'updated' && validExpiry) return { status, ...expiry };
    if (status === 'replaced' && validExpiry && typeof body.token === 'string' && body.token)
      return { status, token: body.token, ...expiry };
    // Asking again would get the same answer: not a transient failure.
    throw new GatewayRejectedError(
      200,
      'unexpected_answer',
      `the account updater answered what it should not (${String(status)})`,
    );
  }

  /** A read of the gateway's records: 404 is null when allowed; any other failure throws (retried). */
  private async read(
    url: URL,
    missingIsNull = false,
    post?: unknown,
    signal: AbortSignal = this.signal(),
  ): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(url, {
        method: post === undefined ? 'GET' : 'POST',
        headers: post === undefined ? {} : { 'content-type': 'application/json' },
        body: post === undefined ? null : JSON.stringify(post),
        signal,
        redirect: 'error',
      });
    } catch (err) {
      // Never echo the request: a status lookup holds tokens.
      throw new GatewayUnavailableError(`no answer from the gateway: ${err instanceof Error ? err.name : 'error'}`);
    }
    if (res.status === 404 && missingIsNull) return null;
    if (res.status !== 200) {
      const body = (await res.json().catch(() => ({}))) as { error?: { code?: string } };
      if (res.status >= 500 || res.status === 429 || res.status === 408)
        throw new GatewayUnavailableError(`the gateway answered ${res.status}`);
      throw new GatewayRejectedError(res.status, body.error?.code ?? 'unknown');
    }
    return res.json();
  }
}
