import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EVENTS_SCHEMA_FILE, renderEventsSchema } from '../scripts/events-schema';
import { EVENT_TYPES } from './eventSchemas';
import { EVENT_PAYLOADS, payloadProblem, publishedFields, publishedPayload } from './eventSchemas';

describe('event payload contracts', () => {
  it('covers every event type', () => {
    expect(Object.keys(EVENT_PAYLOADS).sort()).toEqual([...EVENT_TYPES].sort());
  });

  it('names what is wrong with a payload, and lets payloads gain fields', () => {
    expect(
      payloadProblem('DefaultPaymentMethodChanged', { from: null, to: 'pm-1', reason: 'payment_recovered' }),
    ).toBeNull();
    expect(payloadProblem('CustomerNotified', { kind: 'card_expiring', channel: 'pigeon' })).toMatch(/^channel:/);
    expect(payloadProblem('PaymentMethodStatusChanged', { payment_method_id: 'pm-1', from: 'active' })).toMatch(/to:/);
  });

  it('is documented in docs/events.schema.json, up to date (npm run events:schema)', () => {
    expect(readFileSync(EVENTS_SCHEMA_FILE, 'utf8')).toBe(renderEventsSchema());
  });

  it('publishes to Kafka only the fields a type names, and docs/events.md lists them per type', () => {
    expect(
      publishedPayload('PaymentMethodRemoved', { payment_method_id: 'pm-1', was_default: false, email: 'a@b.c' }),
    ).toEqual({ payment_method_id: 'pm-1', was_default: false });
    expect(publishedPayload('NoSuchType', { email: 'a@b.c' })).toEqual({});
    // Each field only as the contract has it: words where a code is due, and fields an object does
    // not name, stay in the graph (free text written before the contract said codes).
    expect(
      publishedPayload('CustomerErased', {
        deleted: { identifiers: 1, addresses: 0, payment_methods: 0, devices: 0, events_stripped: 2, history_keys: 1 },
        request: { reason: 'asked by a@b.c', requested_by: 'ops-1', override_fraud_review: false },
        merged_records: ['m-1'],
      }),
    ).toEqual({
      deleted: { identifiers: 1, addresses: 0, payment_methods: 0, devices: 0, events_stripped: 2, history_keys: 1 },
    });
    expect(
      publishedPayload('DeviceTrustScoreUpdated', {
        device_id: 'd-1',
        from: 1,
        to: 0.2,
        reason: 'Jane Roe chargeback',
      }),
    ).toEqual({ device_id: 'd-1', from: 1, to: 0.2 });
    expect(
      publishedPayload('CustomersUnmerged', {
        merge_id: 'm',
        survivor_id: 'a',
        merged_id: 'b',
        requested_by: 'ops-1',
        reason: 'her sister',
        restored: { payment_methods: [], devices: [], addresses: [], identifiers: [] },
        not_restored: [],
      }),
    ).not.toHaveProperty('reason');
    const doc = readFileSync(new URL('../docs/events.md', import.meta.url), 'utf8');
    for (const type of EVENT_TYPES) {
      const row = new RegExp(`^\\| \`${type}\`\\s*\\| (.*?)\\s*\\|$`, 'm').exec(doc);
      expect(row, `docs/events.md has a row for ${type}`).not.toBeNull();
      const listed = [...(row?.[1] ?? '').matchAll(/`([a-z_]+)`/g)].map((m) => m[1]);
      expect(listed, type).toEqual(publishedFields(type));
    }
  });
});
