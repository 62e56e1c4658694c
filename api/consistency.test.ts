import { describe, expect, it } from 'vitest';
import type { CommittedEvent } from '../graph/graph';
import {
  customerSeqs,
  customerTokenOf,
  deviceTokenOf,
  formatCustomerToken,
  formatDeviceToken,
  parseToken,
} from './consistency';

const DEVICE = '0b8a7c56-3f0e-4a8e-9d2c-5b7f1e2d3c4a';

const event = (e: Partial<CommittedEvent>): CommittedEvent => ({
  id: 'e',
  type: 'CustomerProfileUpdated',
  customer_id: null,
  customer_seq: null,
  payload: {},
  ...e,
});

const CUSTOMER = '00000000-0000-4000-8000-0000000000c1';

describe('consistency tokens', () => {
  it('parse what they format', () => {
    expect(formatCustomerToken(CUSTOMER, 42)).toBe(`c:${CUSTOMER}:42`);
    expect(formatDeviceToken(DEVICE, 7)).toBe(`d:${DEVICE}:7`);
    expect(parseToken(formatCustomerToken(CUSTOMER, 42))).toEqual({ kind: 'c', customerId: CUSTOMER, seq: 42 });
    expect(parseToken(formatCustomerToken(CUSTOMER, 0))).toEqual({ kind: 'c', customerId: CUSTOMER, seq: 0 });
    expect(parseToken(formatDeviceToken(DEVICE, 7))).toEqual({ kind: 'd', deviceId: DEVICE, seq: 7 });
  });

  it('refuse anything else with null, never a throw', () => {
    for (const bad of [
      undefined,
      null,
      '',
      'c',
      'c:',
      'c:-1',
      'c:01',
      'c:1.5',
      'c:1e3',
      'c: 1',
      'c:1',
      'c:1:2:3',
      `c:${CUSTOMER}`,
      `c::3`,
      `c:${CUSTOMER}:-1`,
      'x:1',
      `d:${DEVICE}`,
      `d:${DEVICE}:`,
      'd::3',
      'd:a b:3',
      `d:${DEVICE}:-2`,
      `c:${CUSTOMER}:99999999999999999`,
      `c:${'9'.repeat(200)}`,
    ])
      expect(parseToken(bad), String(bad)).toBeNull();
  });

  it('name the highest sequence the write committed for the customer or device the answer is about', () => {
    const events = [
      event({ customer_id: 'a', customer_seq: 4 }),
      event({ customer_id: 'b', customer_seq: 9 }),
      event({ customer_id: 'a', customer_seq: 5 }),
      event({ customer_id: null, customer_seq: null }),
      event({ type: 'DeviceTrustScoreUpdated', device_id: DEVICE, device_seq: 3 }),
    ];
    expect(customerSeqs(events)).toEqual(
      new Map([
        ['a', 5],
        ['b', 9],
      ]),
    );
    expect(customerTokenOf(events, 'a')).toBe('c:a:5');
    expect(customerTokenOf(events, 'c')).toBeUndefined();
    expect(deviceTokenOf(events, DEVICE)).toBe(`d:${DEVICE}:3`);
    expect(deviceTokenOf(events, 'other')).toBeUndefined();
    expect(customerTokenOf([], 'a')).toBeUndefined();
  });
});
