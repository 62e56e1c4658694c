/**
 * The payload each signal and Update of Persona's workflows takes, checked by the workflow
 * interceptor (workflows/interceptors.ts) before a handler runs: a signal whose payload is missing
 * or not of its shape is logged and dropped, an Update's is rejected before it reaches the
 * history. Payloads sealed by Persona's codec come from its own api and workers, which send the
 * right shape; these checks are for what reaches Temporal another way — a message sent by hand
 * with no input (the codec never sees an absent payload), or by an older or broken sender — so no
 * message can fail a workflow task again and again. Queries take no payload: there is nothing to
 * refuse. Workflow-safe: no I/O.
 */

type Kind = 'id' | 'text' | 'text?' | 'text|null' | 'number' | 'whole' | 'boolean' | 'boolean?' | readonly string[];

/** A message's one argument: an object with these fields (others are ignored). `none`: no argument. */
type Shape = Readonly<Record<string, Kind>> | 'none';

const failure = {
  payment_id: 'id',
  customer_id: 'id',
  payment_method_id: 'id',
  amount: 'whole',
  currency: 'id',
  decline_code: 'id',
  advice_code: 'text?',
  replaces: 'text?',
} as const;
const relaySettings = { lag_ms: 'whole', page_size: 'whole', poll_interval: 'id', pages_per_run: 'whole' } as const;
const publisherSettings = {
  topic: 'id',
  page_size: 'whole',
  budget_ms: 'whole',
  poll_interval: 'id',
  batches_per_run: 'whole',
} as const;
const review = { decision: ['reinstate', 'confirm'], note: 'text?' } as const;
const consent = { customer_id: 'id', code: 'id' } as const;

/** Every signal Persona's workflows handle, by name. */
export const SIGNAL_SHAPES: Readonly<Record<string, Shape>> = {
  paymentFailed: failure,
  paymentMethodAdded: { payment_method_id: 'id' },
  paymentMethodBlocked: { payment_method_id: 'id', reason: 'text' },
  retryAttention: 'none',
  customerMerged: { merge_id: 'id', merged_id: 'id', survivor_id: 'id' },
  graphRestored: { reason: 'text', epoch: 'number', backup_id: 'id' },
  reviewResolved: review,
  erasureRequested: { reason: 'text', requested_by: 'text|null', override_fraud_review: 'boolean?' },
};

/** Every Update Persona's workflows handle, by name. */
export const UPDATE_SHAPES: Readonly<Record<string, Shape>> = {
  customerWritten: 'none',
  confirmMerge: consent,
  declineMerge: consent,
  undoMerge: { reason: 'text', requested_by: 'text|null' },
  resolveReview: review,
  // `{}` retries every parked event: "all" is said, never assumed from a missing payload.
  retryParkedEvents: { event_id: 'text?' },
  reconfigureRelay: relaySettings,
  reconfigurePublisher: publisherSettings,
  cancel: { reason: 'text' },
  paymentNoLongerOwed: { reason: ['settled_elsewhere', 'not_owed'], note: 'text?' },
  resolveAttention: { action: ['retry', 'skip'], note: 'text?', since: 'text?' },
  offerPaymentMethod: { payment_method_id: 'id' },
};

function fits(kind: Kind, value: unknown): boolean {
  if (Array.isArray(kind)) return typeof value === 'string' && kind.includes(value);
  switch (kind) {
    case 'id':
      return typeof value === 'string' && value.length > 0;
    case 'text':
      return typeof value === 'string';
    case 'text?':
      return value === undefined || typeof value === 'string';
    case 'text|null':
      return value === null || value === undefined || typeof value === 'string';
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'whole':
      return typeof value === 'number' && Number.isInteger(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'boolean?':
      return value === undefined || typeof value === 'boolean';
    default:
      return false;
  }
}

const describe = (kind: Kind): string =>
  Array.isArray(kind)
    ? `one of ${kind.join(', ')}`
    : ({
        id: 'a non-empty string',
        text: 'a string',
        'text?': 'a string when given',
        'text|null': 'a string or null',
        number: 'a number',
        whole: 'a whole number',
        boolean: 'true or false',
        'boolean?': 'true or false when given',
      }[kind as string] ?? String(kind));

/** Why `args` are not what the message takes, or null when they are (or the shape is unknown). */
function misfit(shape: Shape | undefined, args: readonly unknown[]): string | null {
  if (shape === undefined || shape === 'none') return null;
  const [payload] = args;
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload))
    return payload === undefined ? 'the payload is missing' : 'the payload is not an object';
  for (const [field, kind] of Object.entries(shape)) {
    const value = (payload as Record<string, unknown>)[field];
    if (fits(kind, value)) continue;
    return value === undefined ? `${field} is required` : `${field} must be ${describe(kind)}`;
  }
  return null;
}

/** Why a signal's arguments do not fit its name's shape, or null when they do. */
export const malformedSignal = (name: string, args: readonly unknown[]): string | null =>
  misfit(SIGNAL_SHAPES[name], args);

/** Why an Update's arguments do not fit its name's shape, or null when they do. */
export const malformedUpdate = (name: string, args: readonly unknown[]): string | null =>
  misfit(UPDATE_SHAPES[name], args);
