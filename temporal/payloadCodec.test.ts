import { randomBytes } from 'node:crypto';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import {
  historyKeyOwner,
  PayloadKeyUnavailableError,
  PersonaPayloadCodec,
  UnreadablePayloadError,
  bindingHolds,
  type PayloadRefusal,
} from './payloadCodec';
import { isEncrypted, payloadKeyId } from './payloadEnvelope';
import { isRefusedPayloadMark, refusedPayloadReason } from './refusedPayload';
import { WorkflowCustomers, type HistoryKeyStore } from '../graph/historyKeys';
import { newKeySpec, parseKeyRing } from '../config/keyRing';
import { loadSettings } from '../config/env';
import { persistentSchedules } from './schedules';

/**
 * History keys in a Map, and which customer each workflow is in a process's directory (each
 * store its own: one process): the graph's store (graph/historyKeys.ts) is tested against Neo4j.
 */
function mapStore(
  keys = new Map<string, Buffer>(),
): HistoryKeyStore & { keys: Map<string, Buffer>; directory: WorkflowCustomers } {
  const directory = new WorkflowCustomers();
  return {
    keys,
    directory,
    async keyFor(keyId, { create }) {
      if (!keys.has(keyId) && create) keys.set(keyId, randomBytes(32));
      return keys.get(keyId) ?? null;
    },
    async customerOf(workflowId) {
      return directory.get(workflowId) ?? null;
    },
    learn: (workflowId, customerId) => directory.set(workflowId, customerId),
  };
}

const ada = { email: 'ada@acme.io', phone: '+14155550142', fingerprint: 'fp-ada', ip: '203.0.113.7' };
const toPayload = (v: unknown): Payload => defaultPayloadConverter.toPayload(v);
const text = (p: Payload): string => Buffer.from(p.data ?? []).toString() + JSON.stringify(p.metadata);
const onboarding = { type: 'workflow' as const, namespace: 'default', workflowId: 'onboarding-k1' };

describe('the payload codec', () => {
  it('encrypts every payload: nothing of the value is left in the bytes, and it comes back as it was', async () => {
    const codec = new PersonaPayloadCodec(parseKeyRing(newKeySpec('k1'), 'payload key'), mapStore());
    const plain = toPayload(ada);
    const [sealed] = await codec.encode([plain], onboarding);
    expect(isEncrypted(sealed as Payload)).toBe(true);
    for (const v of Object.values(ada)) expect(text(sealed as Payload)).not.toContain(v);
    const [opened] = await codec.decode([sealed as Payload]);
    expect(defaultPayloadConverter.fromPayload(opened as Payload)).toEqual(ada);
  });

  it('keys recoveries and fraud outcomes by customer, an onboarding by itself, the rest by service key', async () => {
    const store = mapStore();
    const codec = new PersonaPayloadCodec(parseKeyRing(newKeySpec('k1'), 'payload key'), store);
    const [own] = await codec.encode([toPayload(ada)], onboarding);
    expect(payloadKeyId(own as Payload)).toBe('history:onboarding-k1');
    // The starter says whose the workflows are; an activity's payloads belong to the workflow that scheduled it.
    store.directory.set('payment-recovery-p1', 'c1');
    store.directory.set('fraud-outcome-o1', 'c1');
    const activity = {
      type: 'activity' as const,
      namespace: 'default',
      workflowId: 'payment-recovery-p1',
      isLocal: false,
    };
    expect(payloadKeyId((await codec.encode([toPayload(1)], activity))[0] as Payload)).toBe('history:customer:c1');
    const fraud = { type: 'workflow' as const, namespace: 'default', workflowId: 'fraud-outcome-o1' };
    expect(payloadKeyId((await codec.encode([toPayload(1)], fraud))[0] as Payload)).toBe('history:customer:c1');
    // Nobody said whose payment-recovery-p2 is: nothing is encrypted under a guess.
    await expect(codec.encode([toPayload(1)], { ...fraud, workflowId: 'payment-recovery-p2' })).rejects.toThrow(
      /customer of workflow payment-recovery-p2 is not known here/,
    );
    for (const workflowId of ['expiry-scan-2026-11-24', 'erasure-c1', 'persona-event-relay', 'trusted-device-c-d-day'])
      expect(
        payloadKeyId(
          (await codec.encode([toPayload(1)], { type: 'workflow', namespace: 'default', workflowId }))[0] as Payload,
        ),
      ).toBe('k1');
    expect(payloadKeyId((await codec.encode([toPayload(1)]))[0] as Payload)).toBe('k1');
    // One key per customer, however many of its workflows; one per onboarding.
    expect([...store.keys.keys()]).toEqual(['onboarding-k1', 'customer:c1']);
  });

  it('learns whose a workflow is from the payloads it decodes: a fresh process encodes its next ones', async () => {
    const ring = parseKeyRing(newKeySpec('k1'), 'payload key');
    const keys = new Map<string, Buffer>();
    const starter = mapStore(keys);
    starter.directory.set('payment-recovery-p1', 'c1');
    const client = new PersonaPayloadCodec(ring, starter);
    const recovery = { type: 'workflow' as const, namespace: 'default', workflowId: 'payment-recovery-p1' };
    const [input] = (await client.encode([toPayload({ customer_id: 'c1' })], recovery)) as [Payload];
    // Another process (a worker) with the same keys knows nothing of p1 until it decodes its input.
    const worker = new PersonaPayloadCodec(ring, mapStore(keys)).marking();
    const activity = {
      type: 'activity' as const,
      namespace: 'default',
      workflowId: 'payment-recovery-p1',
      isLocal: false,
    };
    await expect(worker.encode([toPayload(1)], activity)).rejects.toThrow(/not known here/);
    await worker.decode([input], recovery);
    const [result] = (await worker.encode([toPayload({ ok: true })], activity)) as [Payload];
    expect(payloadKeyId(result)).toBe('history:customer:c1');
    expect(defaultPayloadConverter.fromPayload((await client.decode([result], activity))[0] as Payload)).toEqual({
      ok: true,
    });
    // The first customer known stays: a payload of p1 under another customer's key is read, and
    // the workflow's next payloads still take the first one's.
    starter.directory.set('payment-recovery-p9', 'c2');
    const [forC2] = (await client.encode([toPayload(2)], { ...recovery, workflowId: 'payment-recovery-p9' })) as [
      Payload,
    ];
    const mixed = mapStore(keys);
    mixed.directory.set('payment-recovery-p9', 'c1');
    const known = new PersonaPayloadCodec(ring, mixed).marking();
    const p9 = { ...recovery, workflowId: 'payment-recovery-p9' };
    expect(defaultPayloadConverter.fromPayload((await known.decode([forC2], p9))[0] as Payload)).toBe(2);
    expect(payloadKeyId((await known.encode([toPayload(3)], p9))[0] as Payload)).toBe('history:customer:c1');
  });

  it('cannot read a payload once its history key is destroyed, while another customer’s still reads', async () => {
    const store = mapStore();
    const codec = new PersonaPayloadCodec(parseKeyRing(newKeySpec('k1'), 'payload key'), store);
    store.directory.set('payment-recovery-p1', 'c1');
    store.directory.set('fraud-outcome-o1', 'c1');
    store.directory.set('payment-recovery-p2', 'c2');
    const recovery = { type: 'workflow' as const, namespace: 'default', workflowId: 'payment-recovery-p1' };
    const [mine] = await codec.encode([toPayload(ada)], recovery);
    const [alsoMine] = await codec.encode([toPayload(ada)], { ...recovery, workflowId: 'fraud-outcome-o1' });
    const [onboarded] = await codec.encode([toPayload(ada)], onboarding);
    const [other] = await codec.encode([toPayload('other')], { ...recovery, workflowId: 'payment-recovery-p2' });
    // The erasure destroys the customer's key and its onboarding's.
    store.keys.delete('customer:c1');
    store.keys.delete('onboarding-k1');
    for (const p of [mine, alsoMine])
      await expect(codec.decode([p as Payload])).rejects.toThrow(/history key of customer c1 is gone/);
    await expect(codec.decode([onboarded as Payload])).rejects.toBeInstanceOf(PayloadKeyUnavailableError);
    const server = await codec.decodeWhereReadable([mine as Payload, other as Payload]);
    expect(server.unreadable).toEqual(['history:customer:c1']);
    expect(server.payloads[0]).toBe(mine);
    expect(defaultPayloadConverter.fromPayload(server.payloads[1] as Payload)).toBe('other');
    // A new key made for the customer (the graph's store refuses one for an erased customer) reads none of them.
    await codec.encode([toPayload(1)], recovery);
    await expect(codec.decode([mine as Payload])).rejects.toBeInstanceOf(UnreadablePayloadError);
  });

  it('keeps histories written under an older service key readable after a new key becomes active', async () => {
    const old = newKeySpec('k1');
    const before = new PersonaPayloadCodec(parseKeyRing(old, 'payload key'), null);
    const [sealed] = await before.encode([toPayload(ada)]);
    const after = new PersonaPayloadCodec(parseKeyRing(`${newKeySpec('k2')},${old}`, 'payload key'), null);
    expect(defaultPayloadConverter.fromPayload((await after.decode([sealed as Payload]))[0] as Payload)).toEqual(ada);
    expect(payloadKeyId((await after.encode([toPayload(1)]))[0] as Payload)).toBe('k2');
    // A ring without the old key says which key is missing.
    const without = new PersonaPayloadCodec(parseKeyRing(newKeySpec('k2'), 'payload key'), null);
    await expect(without.decode([sealed as Payload])).rejects.toThrow(/payload key k1 is not in PERSONA_PAYLOAD_KEYS/);
  });

  it('refuses an altered payload, one moved under another key id, and one it did not write', async () => {
    const codec = new PersonaPayloadCodec(parseKeyRing(`${newKeySpec('k1')},${newKeySpec('k0')}`, 'payload key'), null);
    const [sealed] = (await codec.encode([toPayload(ada)])) as [Payload];
    const flipped = Buffer.from(sealed.data ?? []);
    flipped[20] = (flipped[20] ?? 0) ^ 1;
    await expect(codec.decode([{ ...sealed, data: flipped }])).rejects.toBeInstanceOf(UnreadablePayloadError);
    const moved = { ...sealed, metadata: { ...sealed.metadata, 'encryption-key-id': Buffer.from('k0') } };
    await expect(codec.decode([moved])).rejects.toBeInstanceOf(UnreadablePayloadError);
    const plain = toPayload('sent straight to Temporal');
    await expect(codec.decode([plain])).rejects.toThrow(/did not write/);
    // The codec server shows it as it is, for ops to read.
    expect((await codec.decodeWhereReadable([plain])).payloads[0]).toBe(plain);
  });

  it('decodes, in a worker, a payload it did not write to the mark the interceptors refuse, and says so', async () => {
    const refusals: PayloadRefusal[] = [];
    const worker = new PersonaPayloadCodec(parseKeyRing(newKeySpec('k1'), 'payload key'), null).marking((r) =>
      refusals.push(r),
    );
    const context = { type: 'workflow' as const, namespace: 'default', workflowId: 'erasure-c1' };
    const [marked] = await worker.decode([toPayload({ customer_id: 'c1' })], context);
    const value = defaultPayloadConverter.fromPayload(marked as Payload);
    expect(isRefusedPayloadMark(value)).toBe(true);
    expect(refusedPayloadReason([value])).toMatch(/did not write/);
    expect(refusals).toEqual([expect.objectContaining({ workflowId: 'erasure-c1', activityId: null })]);
    // What it wrote itself it reads as ever.
    const [sealed] = (await worker.encode([toPayload(ada)], context)) as [Payload];
    expect(defaultPayloadConverter.fromPayload((await worker.decode([sealed], context))[0] as Payload)).toEqual(ada);
  });

  it('binds a payload to the workflow it was written for: copied into another, it is refused', async () => {
    const ring = parseKeyRing(newKeySpec('k1'), 'payload key');
    const client = new PersonaPayloadCodec(ring, null);
    const worker = client.marking();
    const forA = { type: 'workflow' as const, namespace: 'default', workflowId: 'erasure-a' };
    const forB = { type: 'workflow' as const, namespace: 'default', workflowId: 'erasure-b' };
    const [sealed] = (await client.encode([toPayload({ customer_id: 'a' })], forA)) as [Payload];
    expect(defaultPayloadConverter.fromPayload((await worker.decode([sealed], forA))[0] as Payload)).toEqual({
      customer_id: 'a',
    });
    await expect(client.decode([sealed], forB)).rejects.toThrow(
      /written for workflow erasure-a arrived in workflow erasure-b/,
    );
    const [marked] = await worker.decode([sealed], forB);
    expect(isRefusedPayloadMark(defaultPayloadConverter.fromPayload(marked as Payload))).toBe(true);
    // Renaming the workflow in the metadata does not help: the name is in the cipher's additional data.
    const renamed = { ...sealed, metadata: { ...sealed.metadata, 'encryption-workflow-id': Buffer.from('erasure-b') } };
    await expect(client.decode([renamed], forB)).rejects.toBeInstanceOf(UnreadablePayloadError);
    // Garbage that claims the encoding is refused alike (a worker marks it rather than failing its task forever).
    const garbage = { ...sealed, data: Buffer.from('not a ciphertext at all, but long enough') };
    expect(
      isRefusedPayloadMark(defaultPayloadConverter.fromPayload((await worker.decode([garbage], forA))[0] as Payload)),
    ).toBe(true);
    // A schedule's runs read what was written for its action's id; ops read anything through the codec server.
    const [scheduled] = (await client.encode([toPayload({ ok: 1 })], {
      ...forA,
      workflowId: 'persona-expiry-scan',
    })) as [Payload];
    const run = { ...forA, workflowId: 'persona-expiry-scan-2026-11-26T03:00:00Z' };
    const [read] = await worker.decode([scheduled], run);
    expect(defaultPayloadConverter.fromPayload(read as Payload)).toEqual({ ok: 1 });
    expect(bindingHolds('persona-expiry-scan', 'persona-expiry-scan-2026-11-26T03:00:00Z')).toBe(true);
    expect(bindingHolds('erasure-a', 'erasure-a-2026-11-26T03:00:00Z')).toBe(false);
    expect(bindingHolds('persona-expiry-scan', 'persona-expiry-scan-anything')).toBe(false);
    expect(
      bindingHolds('persona-expiry-scan-t1-workflow', 'persona-expiry-scan-t1-workflow-2001-01-01T06:00:00Z'),
    ).toBe(true);
    expect((await client.decodeWhereReadable([sealed])).unreadable).toEqual([]);
  });

  it("lets every Schedule's runs read the input written for its action", async () => {
    // Every schedule the worker applies, so a new one cannot be left out (the event prune was: every
    // run refused its input and failed, and the graph's events were never pruned).
    const settings = loadSettings();
    const codec = new PersonaPayloadCodec(parseKeyRing(newKeySpec('k1'), 'payload key'), null);
    const context = (workflowId: string) => ({ type: 'workflow' as const, namespace: 'default', workflowId });
    for (const schedule of persistentSchedules(settings)) {
      const action = schedule.action as { workflowId: string };
      const run = `${action.workflowId}-2026-11-28T00:00:00Z`;
      const [input] = (await codec.encode([toPayload({ ok: 1 })], context(action.workflowId))) as [Payload];
      const [read] = await codec.decode([input], context(run));
      expect(defaultPayloadConverter.fromPayload(read as Payload), run).toEqual({ ok: 1 });
    }
  });

  it('reads its key ring from configuration and says what is wrong without echoing a key', () => {
    const ring = parseKeyRing(`${newKeySpec('new')}, ${newKeySpec('old')}`, 'payload key');
    expect(ring.active.id).toBe('new');
    expect(ring.ids).toEqual(['new', 'old']);
    expect(() => parseKeyRing('k1:c2hvcnQ=', 'payload key')).toThrow('payload key k1 must be 32 bytes (got 5)');
    expect(() => parseKeyRing('nocolon', 'payload key')).toThrow('entry 1 must be <key id>:<32 bytes, base64>');
    expect(() => parseKeyRing(`${newKeySpec('a')},${newKeySpec('a')}`, 'payload key')).toThrow(/appears twice/);
    expect(() => parseKeyRing('', 'payload key')).toThrow(/at least one key/);
  });

  it('names the workflows whose payloads take a history key', () => {
    expect(historyKeyOwner({ type: 'workflow', namespace: 'n', workflowId: 'fraud-outcome-o1' })).toBe(
      'fraud-outcome-o1',
    );
    expect(historyKeyOwner({ type: 'activity', namespace: 'n', isLocal: false })).toBeNull();
    expect(historyKeyOwner(undefined)).toBeNull();
  });
});
