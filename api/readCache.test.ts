/**
 * The read cache's rules without Neo4j: the snapshot reader is a stand-in that counts its reads and
 * can fail. What each test proves is seen in whether a read reached the reader.
 */
import { Neo4jError } from 'neo4j-driver';
import { describe, expect, it } from 'vitest';
import type { CustomerSnapshot } from '../graph/context';
import type { Graph } from '../graph/graph';
import { DependencyUnavailableError } from '../runtime/dependencies';
import { createLogger } from '../runtime/logger';
import { TokenNotMetError } from './consistency';
import { ReadCache, type ReadCacheSettings } from './readCache';
import type { CacheEvent } from './readCacheEvents';

const ID = '00000000-0000-4000-8000-000000000001';
const SETTINGS: ReadCacheSettings = {
  enabled: true,
  maxEntries: 100,
  maxBytes: 1024 * 1024,
  ttlMs: 60_000,
  freshMs: 60_000,
  breakerFailures: 3,
  breakerHalfOpenMs: 60_000,
  staleMaxMs: 60_000,
};
const DEVICE = '00000000-0000-4000-8000-0000000000d1';

function snapshot(seq: number, overrides: Partial<CustomerSnapshot> = {}): CustomerSnapshot {
  return {
    customer_id: ID,
    seq,
    status: 'active',
    segment: 'Subscriber',
    ltvMinor: 1000,
    predictedLtvMinor: null,
    devices: [{ device_id: DEVICE, fingerprint: 'fp', trust_score: 0.5, earned: 0.5, ceiling: 1, seq: 1 }],
    methods: [
      {
        id: 'pm-1',
        type: 'card',
        status: 'active',
        brand: 'visa',
        last_four: '4242',
        expiry_month: 12,
        expiry_year: 2040,
        created_at: '2026-01-01T00:00:00Z',
        updated_at: '2026-01-01T00:00:00Z',
        is_default: true,
        first_used: null,
        last_used: null,
      },
    ],
    ...overrides,
  };
}

/** A cache over a reader that answers `next()` and records each read. */
function cacheWith(next: () => CustomerSnapshot | Error | Promise<CustomerSnapshot>) {
  const reads: { leader: boolean }[] = [];
  const cache = new ReadCache({} as Graph, SETTINGS, createLogger('test', 'silent'), 1000, async (_g, _id, options) => {
    reads.push({ leader: options?.leader === true });
    const value = await next();
    if (value instanceof Error) throw value;
    return structuredClone(value);
  });
  cache.polled(Date.now());
  return { cache, reads };
}

const profile = (seq: number, payload: Record<string, unknown>): CacheEvent => ({
  type: 'CustomerProfileUpdated',
  customer_id: ID,
  customer_seq: seq,
  payload,
});

/** A device's own trust change (a device-level event, numbered in the device's sequence). */
const deviceTrust = (deviceId: string, seq: number, to: number): CacheEvent => ({
  type: 'DeviceTrustScoreUpdated',
  customer_id: null,
  customer_seq: null,
  device_id: deviceId,
  device_seq: seq,
  payload: { to },
});

const unreachable = () => new Neo4jError('connection refused', 'ServiceUnavailable', '08000', 'unavailable');

describe('the read cache', () => {
  it('reads Neo4j once, then answers from memory while its tail is current', async () => {
    const { cache, reads } = cacheWith(() => snapshot(3));
    await cache.read(ID, 500);
    await cache.read(ID, 500);
    expect(reads).toHaveLength(1);
    expect(cache.stats).toMatchObject({ hits: 1, misses: { absent: 1, behind_token: 0, tail_behind: 0 } });
  });

  it('goes to Neo4j when its tail has not polled within the fresh window', async () => {
    const { cache, reads } = cacheWith(() => snapshot(3));
    await cache.read(ID, 500);
    (cache as unknown as { polledAt: number }).polledAt = Date.now() - 120_000;
    await cache.read(ID, 500);
    expect(reads).toHaveLength(2);
    expect(cache.stats.misses).toEqual({ absent: 1, behind_token: 0, tail_behind: 1, expired: 0 });
  });

  it('counts a read whose consistency token is past the entry as a miss of its own', async () => {
    let answer = snapshot(3);
    const { cache, reads } = cacheWith(() => answer);
    await cache.read(ID, 500);
    answer = snapshot(4);
    await cache.read(ID, 500, { kind: 'c', customerId: ID, seq: 4 });
    expect(reads).toEqual([{ leader: false }, { leader: true }]);
    expect(cache.stats.misses).toEqual({ absent: 1, behind_token: 1, tail_behind: 0, expired: 0 });
  });

  it('applies the next profile change in place: LTV, segment and a method’s last use', async () => {
    const { cache, reads } = cacheWith(() => snapshot(3));
    await cache.read(ID, 500);
    cache.apply(
      [
        profile(4, {
          changes: { ltv_minor: { from: 1000, to: 2500 }, ltv: { from: '10.00', to: '25.00' } },
          payment_methods_used: [{ payment_method_id: 'pm-1', last_used: '2026-11-23T10:00:00Z' }],
        }),
      ],
      'local',
    );
    const { snapshot: s } = await cache.read(ID, 500);
    expect(reads).toHaveLength(1);
    expect(s).toMatchObject({ seq: 4, ltvMinor: 2500, methods: [{ last_used: '2026-11-23T10:00:00Z' }] });
  });

  it('skips an event it already reflects, and drops the entry on a gap or a change it cannot apply', async () => {
    let answer = snapshot(3);
    const { cache, reads } = cacheWith(() => answer);
    await cache.read(ID, 500);
    cache.apply([profile(3, { changes: { segment: { from: 'New', to: 'Ignored' } } })], 'tail');
    expect((await cache.read(ID, 500)).snapshot.segment).toBe('Subscriber');
    expect(reads).toHaveLength(1);

    cache.apply([profile(5, { changes: { segment: { from: 'Subscriber', to: 'VIP' } } })], 'tail');
    answer = snapshot(5, { segment: 'VIP' });
    expect((await cache.read(ID, 500)).snapshot.segment).toBe('VIP');
    expect(reads).toHaveLength(2);

    cache.apply([{ type: 'CustomerSuspended', customer_id: ID, customer_seq: 6, payload: null }], 'tail');
    answer = snapshot(6, { status: 'suspended' });
    expect((await cache.read(ID, 500)).snapshot.status).toBe('suspended');
    expect(reads).toHaveLength(3);
    expect(cache.stats.invalidated.tail).toBe(2);
  });

  it('never keeps a read behind an event it has seen (a fill begun before it, a lagging replica)', async () => {
    let answer = snapshot(3);
    const { cache, reads } = cacheWith(() => answer);
    cache.apply([{ type: 'CustomerSuspended', customer_id: ID, customer_seq: 4, payload: null }], 'tail');
    expect((await cache.read(ID, 500)).snapshot.seq).toBe(3);
    expect(cache.size).toBe(0);
    answer = snapshot(4, { status: 'suspended' });
    await cache.read(ID, 500);
    await cache.read(ID, 500);
    expect(reads).toHaveLength(2);
    expect(cache.stats.hits).toBe(1);
  });

  it('keeps nothing read before its tail first polled', async () => {
    const cache = new ReadCache({} as Graph, SETTINGS, createLogger('test', 'silent'), 1000, () =>
      Promise.resolve(snapshot(3)),
    );
    await cache.read(ID, 500);
    expect(cache.size).toBe(0);
  });

  it('brings a device’s own trust change to every cached customer on it, as a cap; drops on a gap', async () => {
    const { cache, reads } = cacheWith(() => snapshot(3));
    await cache.read(ID, 500);
    const trust = (seq: number, to: number): CacheEvent => ({
      type: 'DeviceTrustScoreUpdated',
      customer_id: null,
      customer_seq: null,
      device_id: DEVICE,
      device_seq: seq,
      payload: { device_id: DEVICE, from: 1, to },
    });
    // The device's own trust caps the customer's; raising it gives no one trust they did not earn.
    cache.apply([trust(2, 0.9)], 'local');
    expect((await cache.read(ID, 500)).snapshot.devices[0]).toMatchObject({ trust_score: 0.5, ceiling: 0.9 });
    cache.apply([trust(3, 0.2)], 'local');
    expect((await cache.read(ID, 500)).snapshot.devices[0]).toMatchObject({ trust_score: 0.2, ceiling: 0.2 });
    expect(reads).toHaveLength(1);
    cache.apply([trust(5, 0.1)], 'tail');
    await cache.read(ID, 500);
    expect(reads).toHaveLength(2);
  });

  it('adds a newly linked device in place as a fill reads it, and brings the device’s later trust to it', async () => {
    const { cache, reads } = cacheWith(() => snapshot(3));
    await cache.read(ID, 500);
    const NEW = '00000000-0000-4000-8000-0000000000d2';
    cache.apply(
      [
        {
          type: 'DeviceLinked',
          customer_id: ID,
          customer_seq: 4,
          payload: { device_id: NEW },
          cache: { device: { seq: 2, fingerprint: 'fp-new', ceiling: 0.9, earned: 0.5 } },
        },
      ],
      'tail',
    );
    const added = (await cache.read(ID, 500)).snapshot;
    expect(added.seq).toBe(4);
    expect(added.devices.find((d) => d.device_id === NEW)).toEqual({
      device_id: NEW,
      fingerprint: 'fp-new',
      trust_score: 0.5,
      earned: 0.5,
      ceiling: 0.9,
      seq: 2,
    });
    // The device's own trust reaches the customer through the index, as for a filled device.
    cache.apply([deviceTrust(NEW, 3, 0.2)], 'tail');
    expect((await cache.read(ID, 500)).snapshot.devices.find((d) => d.device_id === NEW)).toMatchObject({
      trust_score: 0.2,
      seq: 3,
    });
    expect(reads).toHaveLength(1);
    expect(cache.stats.applied).toBe(2);
  });

  it('drops the entry for a link without the device’s state, or one a later event of the device overtook', async () => {
    const NEW = '00000000-0000-4000-8000-0000000000d2';
    const linked = (seq: number, device?: Record<string, unknown>): CacheEvent => ({
      type: 'DeviceLinked',
      customer_id: ID,
      customer_seq: seq,
      payload: { device_id: NEW },
      ...(device ? { cache: { device } } : {}),
    });
    let answer = snapshot(3);
    const { cache, reads } = cacheWith(() => answer);
    await cache.read(ID, 500);
    // An existing device's new link (the single login path) carries no state: read again.
    cache.apply([linked(4)], 'tail');
    answer = snapshot(4);
    await cache.read(ID, 500);
    expect(reads).toHaveLength(2);
    // A malformed state is not trusted: a negative sequence, a trust past 1.
    cache.apply([linked(5, { seq: -1, fingerprint: 'fp-new', ceiling: 0.9, earned: 0.5 })], 'tail');
    answer = snapshot(5);
    await cache.read(ID, 500);
    expect(reads).toHaveLength(3);
    cache.apply([linked(6, { seq: 2, fingerprint: 'fp-new', ceiling: Infinity, earned: 0.5 })], 'tail');
    answer = snapshot(6);
    await cache.read(ID, 500);
    expect(reads).toHaveLength(4);
    // The device's trust moved (seq 3) before the link's event arrived, which saw it at seq 2.
    cache.apply(
      [deviceTrust(NEW, 3, 0.1), linked(7, { seq: 2, fingerprint: 'fp-new', ceiling: 0.9, earned: 0.5 })],
      'tail',
    );
    answer = snapshot(7);
    await cache.read(ID, 500);
    expect(reads).toHaveLength(5);
    // The device's sequence forgotten to make room (at least 1,000 are held): it is still known to
    // be past the link's, so the link is not trusted.
    cache.apply(
      Array.from({ length: 1001 }, (_, i) =>
        deviceTrust(`00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, 1, 1),
      ),
      'tail',
    );
    cache.apply([linked(8, { seq: 2, fingerprint: 'fp-new', ceiling: 0.9, earned: 0.5 })], 'tail');
    answer = snapshot(8);
    await cache.read(ID, 500);
    expect(reads).toHaveLength(6);
    expect(cache.stats.applied).toBe(0);
    // Another device, never seen: its link is added in place, forgotten sequences or not.
    cache.apply(
      [
        {
          type: 'DeviceLinked',
          customer_id: ID,
          customer_seq: 9,
          payload: { device_id: '00000000-0000-4000-8000-0000000000d3' },
          cache: { device: { seq: 0, fingerprint: 'fp-other', ceiling: 1, earned: 0.5 } },
        },
      ],
      'tail',
    );
    expect((await cache.read(ID, 500)).snapshot.seq).toBe(9);
    expect(reads).toHaveLength(6);
    expect(cache.stats.applied).toBe(1);
  });

  it('reads a customer again once what they earned on a device changed (the outcome came with it)', async () => {
    const { cache, reads } = cacheWith(() => snapshot(3));
    await cache.read(ID, 500);
    cache.apply(
      [
        {
          type: 'DeviceTrustEarned',
          customer_id: ID,
          customer_seq: 4,
          payload: { device_id: DEVICE, from: 0.5, to: 0.8, reason: 'fraud signal' },
        },
      ],
      'local',
    );
    await cache.read(ID, 500);
    expect(reads).toHaveLength(2);
  });

  it('answers a fill an event overtook, but does not keep it', async () => {
    let release: (s: CustomerSnapshot) => void = () => undefined;
    const { cache, reads } = cacheWith(() => new Promise<CustomerSnapshot>((r) => (release = r)));
    const first = cache.read(ID, 500);
    await Promise.resolve();
    cache.apply([{ type: 'CustomerSuspended', customer_id: ID, customer_seq: 4, payload: null }], 'tail');
    release(snapshot(3));
    expect((await first).snapshot.seq).toBe(3);
    expect(cache.size).toBe(0);
    const second = cache.read(ID, 500);
    await Promise.resolve();
    release(snapshot(4, { status: 'suspended' }));
    expect((await second).snapshot.status).toBe('suspended');
    expect(reads).toHaveLength(2);
  });

  it('honours a consistency token: a copy below it goes to the leader, and is never answered stale', async () => {
    let answer: CustomerSnapshot | Error = snapshot(3);
    const { cache, reads } = cacheWith(() => answer);
    await cache.read(ID, 500);
    await cache.read(ID, 500, { kind: 'c', customerId: ID, seq: 3 });
    expect(reads).toHaveLength(1);
    answer = snapshot(5);
    expect((await cache.read(ID, 500, { kind: 'c', customerId: ID, seq: 5 })).snapshot.seq).toBe(5);
    expect(reads.at(-1)).toEqual({ leader: true });
    answer = unreachable();
    const ahead = cache.read(ID, 500, { kind: 'c', customerId: ID, seq: 9 });
    await expect(ahead).rejects.toBeInstanceOf(DependencyUnavailableError);
    await expect(cache.read(ID, 500, { kind: 'd', deviceId: DEVICE, seq: 7 })).rejects.toBeInstanceOf(
      DependencyUnavailableError,
    );
  });

  it('reads once more from the leader when a member answers behind the token; refuses it past the leader', async () => {
    let answers = [snapshot(6)];
    const { cache, reads } = cacheWith(() => answers.shift() ?? snapshot(6));
    await cache.read(ID, 500);
    // The copy reaches the token but its tail is behind: a member that lags answers 3, the leader 6.
    (cache as unknown as { polledAt: number }).polledAt = 1;
    answers = [snapshot(3), snapshot(6)];
    expect((await cache.read(ID, 500, { kind: 'c', customerId: ID, seq: 6 })).snapshot.seq).toBe(6);
    expect(reads).toEqual([{ leader: false }, { leader: false }, { leader: true }]);
    // Past what the leader has: refused after that one read, never answered with what is behind it.
    cache.polled(Date.now());
    answers = [snapshot(6)];
    const ahead = cache.read(ID, 500, { kind: 'c', customerId: ID, seq: 9 });
    await expect(ahead).rejects.toBeInstanceOf(TokenNotMetError);
    expect(reads).toHaveLength(4);
    expect(reads.at(-1)).toEqual({ leader: true });
    expect(cache.stats.behindToken).toBe(2);
  });

  it('refuses another customer’s token after one read; tells nothing of which devices a customer uses', async () => {
    const unlinked = '00000000-0000-4000-8000-0000000000d9';
    const reads: { tokenDeviceId?: string }[] = [];
    const cache = new ReadCache({} as Graph, SETTINGS, createLogger('test', 'silent'), 1000, (_g, _id, options) => {
      reads.push({ ...(options?.tokenDeviceId ? { tokenDeviceId: options.tokenDeviceId } : {}) });
      // The token's device, linked or not, is read with its own sequence (graph/context.ts).
      const tokenDevice = options?.tokenDeviceId;
      return Promise.resolve(
        tokenDevice ? { ...snapshot(3), token_device: { device_id: tokenDevice, seq: 5 } } : snapshot(3),
      );
    });
    cache.polled(Date.now());
    await cache.read(ID, 500);
    const other = '00000000-0000-4000-8000-000000000002';
    await expect(cache.read(ID, 500, { kind: 'c', customerId: other, seq: 1 })).rejects.toBeInstanceOf(
      TokenNotMetError,
    );
    expect(reads).toHaveLength(2);
    // A device the customer does not use: met or refused by the device's own sequence, as a linked one.
    expect((await cache.read(ID, 500, { kind: 'd', deviceId: unlinked, seq: 5 })).from).toBe('neo4j');
    await expect(cache.read(ID, 500, { kind: 'd', deviceId: unlinked, seq: 6 })).rejects.toBeInstanceOf(
      TokenNotMetError,
    );
    await expect(cache.read(ID, 500, { kind: 'd', deviceId: DEVICE, seq: 6 })).rejects.toBeInstanceOf(TokenNotMetError);
    // One text for every refusal: it names neither customer nor device.
    const refusal = await cache.read(ID, 500, { kind: 'c', customerId: other, seq: 1 }).catch((e: Error) => e);
    expect((refusal as Error).message).not.toContain(other);
    // What was read for a token is not kept: the customer's own copy is answered from memory.
    expect((await cache.read(ID, 500)).snapshot).not.toHaveProperty('token_device');
  });

  it('answers a cached customer stale when Neo4j fails, fails fast for others, and opens its breaker', async () => {
    let answer: CustomerSnapshot | Error = snapshot(3);
    const { cache, reads } = cacheWith(() => answer);
    await cache.read(ID, 500);
    (cache as unknown as { polledAt: number }).polledAt = 1;
    answer = unreachable();
    const stale = await cache.read(ID, 500);
    expect(stale.staleAsOf).toBeInstanceOf(Date);
    expect(stale.snapshot.seq).toBe(3);
    const other = '00000000-0000-4000-8000-000000000002';
    await expect(cache.read(other, 500)).rejects.toBeInstanceOf(DependencyUnavailableError);
    await cache.read(ID, 500);
    expect(cache.breakerState).toBe('open');
    const before = reads.length;
    await expect(cache.read(other, 500)).rejects.toBeInstanceOf(DependencyUnavailableError);
    expect(reads).toHaveLength(before);
    expect(cache.stats.stale).toBe(2);
  });
  it('never answers stale a copy an event dropped while the read waited on Neo4j', async () => {
    let answer: CustomerSnapshot | Error | Promise<CustomerSnapshot> = snapshot(3);
    const { cache } = cacheWith(() => answer);
    await cache.read(ID, 500);
    (cache as unknown as { polledAt: number }).polledAt = 1;
    let fail: (e: Error) => void = () => undefined;
    answer = new Promise<CustomerSnapshot>((_, reject) => (fail = reject));
    const pending = cache.read(ID, 500);
    await Promise.resolve();
    cache.apply([{ type: 'CustomerSuspended', customer_id: ID, customer_seq: 4, payload: null }], 'tail');
    fail(unreachable());
    await expect(pending).rejects.toBeInstanceOf(DependencyUnavailableError);
  });

  it('keeps no snapshot holding a device below a trust change it has seen', async () => {
    let answer = snapshot(3);
    const { cache, reads } = cacheWith(() => answer);
    cache.apply(
      [
        {
          type: 'DeviceTrustScoreUpdated',
          customer_id: null,
          customer_seq: null,
          device_id: DEVICE,
          device_seq: 2,
          payload: { to: 0.1 },
        },
      ],
      'tail',
    );
    await cache.read(ID, 500);
    expect(cache.size).toBe(0);
    answer = snapshot(3, {
      devices: [{ device_id: DEVICE, fingerprint: 'fp', trust_score: 0.1, earned: 0.5, ceiling: 0.1, seq: 2 }],
    });
    await cache.read(ID, 500);
    await cache.read(ID, 500);
    expect(reads).toHaveLength(2);
  });

  it('answers a fill whose reads never agreed (marked unconfirmed), but never keeps it', async () => {
    let answer: CustomerSnapshot = { ...snapshot(3), unconfirmed: true };
    const { cache, reads } = cacheWith(() => answer);
    expect((await cache.read(ID, 500)).snapshot.seq).toBe(3);
    expect(cache.size).toBe(0);
    answer = snapshot(3);
    await cache.read(ID, 500);
    await cache.read(ID, 500);
    expect(reads).toHaveLength(2);
  });

  it('keeps a copy of its own: what it answered is not changed by an event applied later', async () => {
    const { cache } = cacheWith(() => snapshot(3));
    const answered = (await cache.read(ID, 500)).snapshot;
    cache.apply(
      [
        profile(4, {
          changes: { ltv_minor: { from: 1000, to: 2500 }, ltv: { from: '10.00', to: '25.00' } },
          payment_methods_used: [{ payment_method_id: 'pm-1', last_used: '2026-11-23T10:00:00Z' }],
        }),
      ],
      'tail',
    );
    expect((await cache.read(ID, 500)).snapshot).toMatchObject({ seq: 4, ltvMinor: 2500 });
    expect(answered).toMatchObject({ seq: 3, ltvMinor: 1000, methods: [{ last_used: null }] });
  });
});

describe('the read cache after a merge', () => {
  // ID is the survivor; MERGED was merged into it (a tombstone: the reader follows it, graph/context.ts).
  const MERGED = '00000000-0000-4000-8000-0000000000aa';
  const event = (customerId: string, type: string, seq: number, payload: Record<string, unknown> | null = null) =>
    ({ type, customer_id: customerId, customer_seq: seq, payload }) as CacheEvent;

  /** A reader that answers the survivor's snapshot for both ids, followed for the merged one; counts reads per id. */
  function mergedCache(survivor: () => CustomerSnapshot | Error | Promise<CustomerSnapshot> = () => snapshot(3)) {
    const reads: string[] = [];
    const cache = new ReadCache({} as Graph, SETTINGS, createLogger('test', 'silent'), 1000, async (_g, id) => {
      reads.push(id);
      const value = await survivor();
      if (value instanceof Error) throw value;
      return structuredClone(id === MERGED ? { ...value, merged_into: ID, merged_seq: 41 } : value);
    });
    cache.polled(Date.now());
    return { cache, reads };
  }

  it('answers the merged id with the survivor’s snapshot and merged_into, kept once, under the survivor', async () => {
    const { cache, reads } = mergedCache();
    const first = await cache.read(MERGED, 500);
    expect(first.snapshot).toMatchObject({ customer_id: ID, merged_into: ID, seq: 3 });
    // Both ids are served from the one entry: the survivor's own answer has no merged_into.
    expect((await cache.read(ID, 500)).snapshot).not.toHaveProperty('merged_into');
    expect((await cache.read(MERGED, 500)).snapshot).toMatchObject({ customer_id: ID, merged_into: ID });
    expect(reads).toEqual([MERGED]);
    expect(cache.size).toBe(1);
  });

  it('brings the survivor’s later events to the merged id: applied in place, or dropped for both', async () => {
    let answer = snapshot(3);
    const { cache, reads } = mergedCache(() => answer);
    await cache.read(MERGED, 500);
    cache.apply([profile(4, { changes: { segment: { from: 'Subscriber', to: 'VIP' } } })], 'tail');
    expect((await cache.read(MERGED, 500)).snapshot).toMatchObject({ segment: 'VIP', merged_into: ID, seq: 4 });
    expect(reads).toEqual([MERGED]);
    cache.apply([event(ID, 'CustomerSuspended', 5)], 'tail');
    answer = snapshot(5, { status: 'suspended' });
    expect((await cache.read(MERGED, 500)).snapshot).toMatchObject({ status: 'suspended', merged_into: ID });
    expect(reads).toEqual([MERGED, MERGED]);
  });

  it('never serves the alias once the survivor’s entry was replaced, nor after an event of the merged id', async () => {
    let answer = snapshot(3);
    const { cache, reads } = mergedCache(() => answer);
    await cache.read(MERGED, 500);
    // The survivor's entry dropped and filled again by a read of its own: the merged id reads Neo4j.
    cache.apply([event(ID, 'PaymentMethodStatusChanged', 4)], 'tail');
    answer = snapshot(4);
    await cache.read(ID, 500);
    await cache.read(MERGED, 500);
    expect(reads).toEqual([MERGED, ID, MERGED]);
    // An unmerge appends CustomersUnmerged to both logs; the merged id's alone already ends the alias.
    cache.apply([event(MERGED, 'CustomersUnmerged', 9)], 'tail');
    await cache.read(ID, 500);
    await cache.read(MERGED, 500);
    expect(reads).toEqual([MERGED, ID, MERGED, MERGED]);
  });

  it('drops the survivor’s pre-merge entry; keeps no fill of the merged id an unmerge overtook', async () => {
    let answer: CustomerSnapshot | Promise<CustomerSnapshot> = snapshot(3);
    const { cache, reads } = mergedCache(() => answer);
    await cache.read(ID, 500);
    cache.apply([event(ID, 'CustomersMerged', 4)], 'tail');
    answer = snapshot(4, { methods: [] });
    expect((await cache.read(ID, 500)).snapshot.seq).toBe(4);
    expect(reads).toEqual([ID, ID]);

    let release: (s: CustomerSnapshot) => void = () => undefined;
    answer = new Promise<CustomerSnapshot>((r) => (release = r));
    cache.apply([event(ID, 'CustomerSuspended', 5)], 'tail');
    const pending = cache.read(MERGED, 500);
    await Promise.resolve();
    cache.apply([event(MERGED, 'CustomersUnmerged', 7)], 'tail');
    release(snapshot(5));
    expect((await pending).snapshot).toMatchObject({ customer_id: ID, merged_into: ID, seq: 5 });
    answer = snapshot(5);
    await cache.read(MERGED, 500);
    expect(reads).toEqual([ID, ID, MERGED, MERGED]);
  });

  it('keeps no fill of the merged id when an event of the survivor came while it ran', async () => {
    let release: (s: CustomerSnapshot) => void = () => undefined;
    let answer: CustomerSnapshot | Promise<CustomerSnapshot> = new Promise<CustomerSnapshot>((r) => (release = r));
    const { cache, reads } = mergedCache(() => answer);
    const pending = cache.read(MERGED, 500);
    await Promise.resolve();
    // The survivor's suspension commits while the read of the merged id runs; the read saw sequence 3.
    cache.apply([event(ID, 'CustomerSuspended', 3)], 'tail');
    release(snapshot(3));
    await pending;
    expect(cache.size).toBe(0);
    answer = snapshot(3, { status: 'suspended' });
    expect((await cache.read(MERGED, 500)).snapshot.status).toBe('suspended');
    expect(reads).toEqual([MERGED, MERGED]);
  });

  it('meets a token of the merged id by the tombstone’s own sequence, only from Neo4j', async () => {
    const { cache, reads } = mergedCache();
    await cache.read(MERGED, 500);
    // The reader follows the merge with the tombstone's own sequence, 41 (mergedCache).
    const met = await cache.read(MERGED, 500, { kind: 'c', customerId: MERGED, seq: 41 });
    expect(met).toMatchObject({ from: 'neo4j', snapshot: { customer_id: ID, merged_into: ID } });
    await expect(cache.read(MERGED, 500, { kind: 'c', customerId: MERGED, seq: 42 })).rejects.toBeInstanceOf(
      TokenNotMetError,
    );
    // The survivor's own read compares the survivor's tokens only.
    await expect(cache.read(ID, 500, { kind: 'c', customerId: MERGED, seq: 1 })).rejects.toBeInstanceOf(
      TokenNotMetError,
    );
    expect(reads).toEqual([MERGED, MERGED, MERGED, ID]);
  });

  it('answers the merged id stale from the survivor’s entry while Neo4j cannot answer', async () => {
    let answer: CustomerSnapshot | Error = snapshot(3);
    const { cache } = mergedCache(() => answer);
    await cache.read(MERGED, 500);
    (cache as unknown as { polledAt: number }).polledAt = 1;
    answer = unreachable();
    const stale = await cache.read(MERGED, 500);
    expect(stale.staleAsOf).toBeInstanceOf(Date);
    expect(stale.snapshot).toMatchObject({ customer_id: ID, merged_into: ID });
  });
});
