/**
 * Every signal and Update Persona defines has a shape, and the shapes refuse a missing or
 * malformed payload while taking what Persona's own senders send.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { malformedSignal, malformedUpdate, SIGNAL_SHAPES, UPDATE_SHAPES } from './messageShapes';

const here = import.meta.dirname;
/** The names given to defineSignal and defineUpdate in temporal/*.ts: the messages workflows handle. */
function defined(kind: 'Signal' | 'Update'): string[] {
  const names: string[] = [];
  for (const file of readdirSync(here).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts')))
    for (const m of readFileSync(join(here, file), 'utf8').matchAll(
      new RegExp(`define${kind}<[\\s\\S]*?>\\(\\s*'([A-Za-z]+)'`, 'g'),
    ))
      names.push(m[1] as string);
  return names.sort();
}

describe('message shapes', () => {
  it('cover every signal and Update Persona defines, and nothing else', () => {
    expect(defined('Signal')).toEqual(Object.keys(SIGNAL_SHAPES).sort());
    expect(defined('Update')).toEqual(Object.keys(UPDATE_SHAPES).sort());
  });

  it('refuse a missing payload for every message that takes one', () => {
    for (const [name, shape] of Object.entries(SIGNAL_SHAPES))
      expect(malformedSignal(name, []), name).toBe(shape === 'none' ? null : 'the payload is missing');
    for (const [name, shape] of Object.entries(UPDATE_SHAPES))
      expect(malformedUpdate(name, []), name).toBe(shape === 'none' ? null : 'the payload is missing');
  });

  it('refuse a payload that is not an object, or a field of the wrong kind, naming the field', () => {
    expect(malformedSignal('paymentFailed', [null])).toBe('the payload is not an object');
    expect(malformedSignal('paymentFailed', [['p-1']])).toBe('the payload is not an object');
    expect(malformedSignal('paymentFailed', [{ payment_id: 'p-1' }])).toBe('customer_id is required');
    expect(
      malformedSignal('paymentFailed', [
        {
          payment_id: 'p-1',
          customer_id: 'c-1',
          payment_method_id: 'pm-1',
          amount: 12.5,
          currency: 'EUR',
          decline_code: 'x',
        },
      ]),
    ).toBe('amount must be a whole number');
    expect(malformedSignal('graphRestored', [{ reason: 'r', epoch: '2', backup_id: 'b' }])).toBe(
      'epoch must be a number',
    );
    expect(malformedUpdate('paymentNoLongerOwed', [{ reason: 'because' }])).toBe(
      'reason must be one of settled_elsewhere, not_owed',
    );
    expect(malformedUpdate('retryParkedEvents', [{ event_id: 7 }])).toBe('event_id must be a string when given');
    expect(malformedUpdate('offerPaymentMethod', [{ payment_method_id: '' }])).toBe(
      'payment_method_id must be a non-empty string',
    );
  });

  it("take what Persona's own senders send", () => {
    expect(
      malformedSignal('paymentFailed', [
        {
          payment_id: 'p-1',
          customer_id: 'c-1',
          payment_method_id: 'pm-1',
          amount: 2599,
          currency: 'EUR',
          decline_code: 'insufficient_funds',
        },
      ]),
    ).toBeNull();
    expect(malformedSignal('reviewResolved', [{ decision: 'reinstate', note: 'false positive cf-1' }])).toBeNull();
    expect(
      malformedSignal('erasureRequested', [{ reason: 'asked', requested_by: null, override_fraud_review: false }]),
    ).toBeNull();
    expect(malformedSignal('graphRestored', [{ reason: 'r', epoch: 2, backup_id: 'b-1' }])).toBeNull();
    expect(malformedSignal('retryAttention', [])).toBeNull();
    expect(malformedUpdate('retryParkedEvents', [{}])).toBeNull();
    expect(malformedUpdate('customerWritten', [])).toBeNull();
    // A name Persona does not define is the SDK's to refuse, not a shape's.
    expect(malformedSignal('somethingElse', [])).toBeNull();
  });
});
