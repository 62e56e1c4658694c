/**
 * What a REST call weighs: a route that reaches Temporal costs more than a graph read, and
 * `?wait=true` stretches only the routes that document it. (That both lists name routes that
 * exist, and that the waiting ones are exactly those with a `wait` parameter, is checked against
 * the OpenAPI document in test/integration/api-limits.test.ts.)
 */
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { requestDeadline } from './deadlines';
import type { ApiDeps } from './deps';
import { TEMPORAL_CALL_COST } from './rateLimit';
import { routeCost, routeWaits } from './routeWeights';

describe('route weights', () => {
  it('charge a route that reaches Temporal more than a graph read', () => {
    expect(routeCost('GET', '/api/v1/payment-recoveries/pay-1')).toBe(TEMPORAL_CALL_COST);
    expect(routeCost('HEAD', '/api/v1/payment-recoveries/pay-1')).toBe(TEMPORAL_CALL_COST);
    expect(routeCost('POST', '/api/v1/identity-merges/m-1/confirm')).toBe(TEMPORAL_CALL_COST);
    expect(routeCost('DELETE', '/api/v1/customers/c-1')).toBe(TEMPORAL_CALL_COST);
    expect(routeCost('GET', '/api/v1/customers/c-1/profile')).toBe(1);
    expect(routeCost('GET', '/api/v1/customers/c-1/context')).toBe(1);
    // The console's pages that list or query workflows, and its actions.
    expect(routeCost('GET', '/console/customers/c-1')).toBe(TEMPORAL_CALL_COST);
    expect(routeCost('POST', '/console/actions/cancel-recovery')).toBe(TEMPORAL_CALL_COST);
    expect(routeCost('GET', '/console/me')).toBe(TEMPORAL_CALL_COST);
    expect(routeCost('GET', '/console/search')).toBe(1);
    // A path that only starts like a Temporal route is not one.
    expect(routeCost('GET', '/api/v1/payment-recoveries/pay-1/extra')).toBe(1);
  });

  it('let only the routes that document it wait', () => {
    expect(routeWaits('POST', '/api/v1/onboarding', 'true')).toBe(true);
    expect(routeWaits('POST', '/api/v1/onboarding', undefined)).toBe(false);
    expect(routeWaits('GET', '/api/v1/events', 'true')).toBe(false);
    expect(routeWaits('POST', '/codec/decode', 'true')).toBe(false);
    expect(routeWaits('GET', '/console/search', 'true')).toBe(false);
  });

  it('keep the short deadline for a route that takes no wait, whatever the query says', async () => {
    let abandoned = false;
    const deps = {
      limits: { requestDeadlineMs: 10, waitTimeoutMs: 3_600_000 },
      requests: { requestId: 'r-1', abandon: () => (abandoned = true), setDeadline: () => undefined },
      logger: { debug: () => undefined, error: () => undefined },
    } as unknown as ApiDeps;
    const app = new Hono();
    app.use('*', requestDeadline(deps));
    app.onError((err, c) => c.text(err.name, 503));
    // Never answers by itself: only the deadline ends it (an hour, were `wait` believed here).
    app.get('/api/v1/events', () => new Promise<Response>(() => undefined));
    const res = await app.request('/api/v1/events?wait=true');
    expect(res.status).toBe(503);
    expect(abandoned).toBe(true);
  });
});
