/**
 * The stack's gateway simulator process honours the faults of a real processor set over HTTP: a
 * charge answered `processing` that settles later by the simulator's clock, and a listing that
 * lags behind commits. The simulator is shared by every test: each fault is set for this test's
 * own charge and reset at once, and the clock is moved on only as far as the test needs.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { GatewayUnavailableError, HttpPaymentGateway } from '../../clients/paymentGateway';
import { loadSettings } from '../../config/env';

const base = loadSettings().PERSONA_GATEWAY_URL;
const gateway = new HttpPaymentGateway(base, 5000);
/** The faults this file sets, as they are when no test has set them. */
const UNSET = { processing_next: 0, processing_ms: 60_000, listing_lag_ms: 0 };

const put = async (route: string, body: unknown) => {
  const res = await fetch(`${base}${route}`, { method: 'PUT', body: JSON.stringify(body) });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
};
const charge = (paymentId: string) =>
  gateway.charge({
    idempotency_key: `${paymentId}:pm-1`,
    token: 'tok_visa',
    amount: 1999,
    currency: 'EUR',
    customer_id: `c-${paymentId}`,
    initiator: 'mit',
    reference: paymentId,
  });

afterEach(async () => {
  await put('/_sim/faults', UNSET);
});

describe("the stack's gateway simulator", () => {
  it('settles a processing_next charge by its clock, and lists a charge listing_lag_ms after it was made', async () => {
    const slow = `pay-sim-processing-${randomUUID()}`;
    const late = `pay-sim-lag-${randomUUID()}`;

    // Each fault is lifted once its charge is answered (afterEach lifts it if the test fails first).
    await put('/_sim/faults', { processing_next: 1, processing_ms: 2000 });
    const processing = await charge(slow).catch((err: unknown) => err);
    await put('/_sim/faults', UNSET);
    // An outcome not known yet: thrown as the gateway being unavailable, never a success or a decline.
    expect(processing).toBeInstanceOf(GatewayUnavailableError);
    expect(String(processing)).toMatch(/processing/);
    const [made] = await gateway.chargesByReference(slow);
    expect(made).toMatchObject({ status: 'processing', decline_code: null });
    await expect(charge(slow)).rejects.toThrow(/processing/);

    await put('/_sim/faults', { listing_lag_ms: 2000 });
    const listed = await charge(late);
    await put('/_sim/faults', UNSET);
    expect(listed).toMatchObject({ outcome: 'succeeded' });
    expect(await gateway.chargesByReference(late)).toEqual([]);
    expect(await gateway.getCharge(listed.charge_id as string)).toMatchObject({ reference: late, status: 'succeeded' });

    await put('/_sim/clock', { advance_ms: 2000 });
    expect(await gateway.chargesByReference(slow)).toMatchObject([{ id: made?.id, status: 'succeeded' }]);
    expect(await charge(slow)).toMatchObject({ outcome: 'succeeded', charge_id: made?.id });
    expect(await gateway.chargesByReference(late)).toMatchObject([{ id: listed.charge_id }]);
  });
});
