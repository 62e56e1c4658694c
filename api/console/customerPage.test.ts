/**
 * The customer page's identity-graph data: what the drawing gets is masked, counts the other
 * customers of a device or card without naming them, and cannot end its script block.
 */
import { describe, expect, it } from 'vitest';
import type { CustomerGraph } from '../../graph/console';
import { graphElements, jsonForScript } from './customerPage';

const graph: CustomerGraph = {
  customer_id: 'c-1',
  cards: [
    {
      id: 'pm-1',
      type: 'card',
      status: 'active',
      brand: 'visa',
      last_four: '4242',
      expiry_month: 12,
      expiry_year: 2031,
      is_default: true,
      shared_with: 1000,
    },
  ],
  devices: [
    {
      id: 'd-1',
      fingerprint: 'fp_8f14e45fceea167a',
      trust_score: 0.9,
      last_login: null,
      shared_with: 99_999,
      disowned_at: null,
    },
    {
      id: 'd-2',
      fingerprint: 'fp_own_phone_0001',
      trust_score: 0.2,
      last_login: null,
      shared_with: 0,
      disowned_at: '2025-01-02T03:04:05Z',
    },
  ],
  addresses: [{ id: 'a-1', type: 'billing', city: 'London', country: 'GB', is_default: true, disowned_at: null }],
  identifiers: [
    { id: 'i-1', type: 'email', value: 'alice@acme.io', is_verified: true },
    { id: 'i-2', type: 'phone_number', value: '+14155550142', is_verified: false },
  ],
  used_on: [['pm-1', 'd-1']],
  totals: { cards: 1, devices: 2, addresses: 1, identifiers: 2 },
  cap: 100,
  share_cap: 1000,
};

describe('the identity graph’s data for the drawing', () => {
  it('labels every node masked, of one of the kinds the drawing colours', () => {
    const elements = graphElements(graph);
    const labels = elements.flatMap((e) => (e.data.label ? [e.data.label] : []));
    expect(labels).toEqual([
      'This customer',
      'Visa •••• 4242 (active)',
      '1000 or more other customers',
      'Device …167a, trust 0.90',
      '99,999 other customers',
      'Device …0001, trust 0.20',
      'London, GB',
      'a***@acme.io',
      '+1 *** *** 0142',
    ]);
    const text = JSON.stringify(elements);
    for (const raw of ['alice@acme.io', '+14155550142', 'fp_8f14e45fceea167a', 'fp_own_phone_0001'])
      expect(text).not.toContain(raw);
    expect(new Set(elements.map((e) => e.data.kind).filter(Boolean))).toEqual(
      new Set(['customer', 'card', 'device', 'address', 'identifier', 'others']),
    );
  });

  it('links the customer to each node, the others to their device or card, and a card to its devices', () => {
    const edges = graphElements(graph).filter((e) => e.data.source);
    expect(edges.map((e) => `${e.data.source} → ${e.data.target}`)).toEqual([
      'customer → card:pm-1',
      'card:pm-1 → others:card:pm-1',
      'customer → device:d-1',
      'device:d-1 → others:device:d-1',
      'customer → device:d-2',
      'customer → address:a-1',
      'customer → identifier:i-1',
      'customer → identifier:i-2',
      'card:pm-1 → device:d-1',
    ]);
  });

  it('escapes what could end the script block, and parses back to the same value', () => {
    const value = { label: '</script><script>alert(1)</script> & \u2028' };
    const json = jsonForScript(value);
    expect(json).not.toMatch(/[<>&\u2028]/);
    expect(JSON.parse(json)).toEqual(value);
  });
});
