/**
 * Every payload Persona hands Temporal is ciphertext (AES-256-GCM): workflow and activity inputs
 * and results, signals, queries, updates, memos, summaries, failure details and heartbeats. Search
 * attributes stay clear (they hold ids only: temporal/searchAttributes.ts).
 *
 * Two kinds of key:
 *   - the **service keys**, a ring from configuration (`PERSONA_PAYLOAD_KEYS`: `id:base64,…`, the
 *     first one active). Payloads of workflows that belong to no one customer (the expiry scan,
 *     the event relay, the prune, an erasure) are encrypted under the active one; older keys stay
 *     in the ring so that histories written under them stay readable.
 *   - **history keys** (graph/historyKeys.ts): one per customer, for all its payment recoveries
 *     and fraud outcomes, and one of its own for each onboarding (which has no customer when it
 *     starts), kept in the graph wrapped by the active service key and linked to the customer.
 *     Erasure destroys the customer's keys once none of its open processes runs, and with them
 *     every history payload of that customer: crypto-shredding, without touching Temporal's
 *     storage.
 *
 * Which key a payload takes follows from its serialization context (the workflow that owns it, or
 * the workflow that scheduled the activity): see `historyKeyOwner`, and for a recovery or fraud
 * outcome the customer it belongs to, which the codec's store knows from the starter or from the
 * payloads of that workflow it decoded (`HistoryKeyStore.customerOf`; decoding a payload under a
 * customer's key teaches it). Starting a workflow of a customer that has a key, and decoding a
 * payload, write nothing to the graph; a worker reads a key once per cache period. The key id
 * travels in the payload's metadata (`encryption-key-id`: a service key's id,
 * `history:customer:<customer id>` or `history:<onboarding workflow id>`) and, with the workflow
 * the payload was written for, is the cipher's additional authenticated data, so a payload cannot
 * be moved under another key or into another workflow.
 *
 * A payload this codec did not write (plaintext: a workflow started or signalled straight at
 * Temporal's frontend, with the CLI or another SDK) is never acted on. A client refuses it with
 * an error; a worker's codec (`marking`) decodes it to a mark that the workflow interceptors
 * (workflows/interceptors.ts) and the activity interceptor turn into a failure: a workflow
 * started so fails at once, having done nothing; a signal or Update so sent is refused. Each one
 * is reported (`onRefused`: the worker's log line and metric). Only the codec server passes
 * plaintext through, for ops to read.
 */
import { METADATA_ENCODING_KEY, type Payload, type PayloadCodec, type SerializationContext } from '@temporalio/common';
import { fraudOutcomeWorkflowId } from './fraud';
import { recoveryWorkflowId } from './recovery';
import type { Config } from '../config/env';
import type { KeyRing } from '../config/keyRing';
import {
  customerKeyId,
  customerOfKeyId,
  graphHistoryKeys,
  HistoryKeyUnreadableError,
  type HistoryKeyStore,
  type WorkflowCustomers,
} from '../graph/historyKeys';
export type { HistoryKeyStore };
import type { Graph } from '../graph/graph';
import { onboardingWorkflowId } from './workflowIds';
import { EXPIRY_SCAN_SCHEDULE_ID } from './expiry';
import { EVENT_PRUNE_SCHEDULE_ID } from './eventPrune';
import { INTERACTION_PRUNE_SCHEDULE_ID } from './interactionPrune';
import { GATEWAY_RECONCILIATION_SCHEDULE_ID } from './reconciliation';
import { REFUSED_PAYLOAD_MARK } from './refusedPayload';
import {
  boundWorkflowId,
  ENCRYPTED_ENCODING,
  encodingOf,
  HISTORY_KEY_PREFIX,
  isEncrypted,
  open,
  payloadKeyId,
  seal,
} from './payloadEnvelope';

/**
 * Schedules' actions: the runs a schedule starts have its action's workflow id and the time it
 * was due after a dash (`…-2026-11-26T03:00:00Z`), and their input was written for the action's
 * id. Only these (and ids under them, `<id>-…`) may be read so; no customer's workflow is one.
 */
const SCHEDULED_WORKFLOW_IDS: readonly string[] = [
  EXPIRY_SCAN_SCHEDULE_ID,
  INTERACTION_PRUNE_SCHEDULE_ID,
  EVENT_PRUNE_SCHEDULE_ID,
  GATEWAY_RECONCILIATION_SCHEDULE_ID,
];

const SCHEDULED_RUN = /^-\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

/** Whether a payload written for workflow `bound` may be read in workflow `actual`. */
export function bindingHolds(bound: string | null, actual: string): boolean {
  if (bound === null) return false;
  if (bound === actual) return true;
  const scheduled = SCHEDULED_WORKFLOW_IDS.some((id) => bound === id || bound.startsWith(`${id}-`));
  return scheduled && actual.startsWith(`${bound}-`) && SCHEDULED_RUN.test(actual.slice(bound.length));
}
const ONBOARDING_PREFIX = onboardingWorkflowId('');

/** The customer workflows whose payloads carry one customer's personal data: they take history keys. */
export const HISTORY_KEYED_WORKFLOW_PREFIXES: readonly string[] = [
  onboardingWorkflowId(''),
  recoveryWorkflowId(''),
  fraudOutcomeWorkflowId(''),
];

/**
 * The customer workflow a payload with this context belongs to (its key is its customer's, or an
 * onboarding's own), or null for the service key. An activity's payloads belong to the workflow
 * that scheduled it; a signal's, query's or update's to the workflow it is sent to.
 */
export function historyKeyOwner(context: SerializationContext | undefined): string | null {
  const id = context?.workflowId;
  if (!id) return null;
  return HISTORY_KEYED_WORKFLOW_PREFIXES.some((p) => id.startsWith(p)) ? id : null;
}

/** A payload Persona's codec did not write, refused: where it came (the workflow it was for). */
export interface PayloadRefusal {
  workflowId: string | null;
  /** The activity it was for, when it was an activity's. */
  activityId: string | null;
  reason: string;
}

export interface PayloadCodecOptions {
  /**
   * What decoding a payload this codec did not write does: `refuse` throws (a client's, the
   * default); `mark` hands on REFUSED_PAYLOAD_MARK (a worker's: its interceptors fail the workflow).
   */
  plaintext?: 'refuse' | 'mark';
  /** Told of every payload refused (a log line, a metric). */
  onRefused?: (refusal: PayloadRefusal) => void;
}

/** An encrypted payload this process cannot read (its key is gone, or it is not what it claims to be). */
export class UnreadablePayloadError extends Error {
  constructor(
    readonly keyId: string,
    message: string,
  ) {
    super(message);
    this.name = 'UnreadablePayloadError';
  }
}

/**
 * A payload for a customer workflow whose customer this process cannot name: it was never started,
 * or it has closed (it left its customer's open processes). Nothing is sent; whoever addresses it
 * tells the two apart (temporal/updates.ts `updateRefusalOf`: 404 or 409).
 */
export class WorkflowCustomerUnknownError extends Error {
  constructor(readonly workflowId: string) {
    super(
      `the customer of workflow ${workflowId} is not known here (not started by this process, no payload ` +
        'of it decoded, not among any customer’s open processes): nothing can be sent to it',
    );
    this.name = 'WorkflowCustomerUnknownError';
  }
}

/** A payload whose key is gone: its history key was destroyed (erasure), or never existed here. */
export class PayloadKeyUnavailableError extends UnreadablePayloadError {
  constructor(keyId: string) {
    const historyKey = keyId.startsWith(HISTORY_KEY_PREFIX) ? keyId.slice(HISTORY_KEY_PREFIX.length) : null;
    const customer = historyKey === null ? null : customerOfKeyId(historyKey);
    super(
      keyId,
      historyKey === null
        ? `payload key ${keyId} is not in PERSONA_PAYLOAD_KEYS: add it back to the ring to read these payloads`
        : `the history key ${customer === null ? `of workflow ${historyKey}` : `of customer ${customer}`} is gone ` +
            '(destroyed by an erasure): its payloads cannot be read',
    );
    this.name = 'PayloadKeyUnavailableError';
  }
}

export class PersonaPayloadCodec implements PayloadCodec {
  constructor(
    private readonly ring: KeyRing,
    /** Null where no graph is reachable (workflow unit tests, recorded histories): the service key for all. */
    private readonly historyKeys: HistoryKeyStore | null,
    private readonly options: PayloadCodecOptions = {},
  ) {}

  /** The same keys (and history-key cache), for a worker: payloads it did not write decode to the mark. */
  marking(onRefused?: (refusal: PayloadRefusal) => void): PersonaPayloadCodec {
    return new PersonaPayloadCodec(this.ring, this.historyKeys, {
      plaintext: 'mark',
      ...(onRefused ? { onRefused } : {}),
    });
  }

  async encode(payloads: Payload[], context?: SerializationContext): Promise<Payload[]> {
    const bound = context?.workflowId ?? null;
    const owner = this.historyKeys ? historyKeyOwner(context) : null;
    if (owner === null || !this.historyKeys)
      return payloads.map((p) => seal(this.ring.active.key, this.ring.active.id, bound, p));
    if (payloads.length === 0) return payloads;
    const storeKeyId = await this.historyKeyIdFor(this.historyKeys, owner);
    const key = await this.historyKeys.keyFor(storeKeyId, { create: true });
    if (!key) throw new PayloadKeyUnavailableError(`${HISTORY_KEY_PREFIX}${storeKeyId}`);
    return payloads.map((p) => seal(key, `${HISTORY_KEY_PREFIX}${storeKeyId}`, bound, p));
  }

  /** The customer a recovery or fraud outcome belongs to, as far as this process knows (null: nothing says). */
  async customerOf(workflowId: string): Promise<string | null> {
    return this.historyKeys ? this.historyKeys.customerOf(workflowId) : null;
  }

  /** The store's key id for a customer workflow: its customer's key, or an onboarding's own. */
  private async historyKeyIdFor(store: HistoryKeyStore, workflowId: string): Promise<string> {
    if (workflowId.startsWith(ONBOARDING_PREFIX)) return workflowId;
    const customerId = await store.customerOf(workflowId);
    // A worker learns it from the workflow's input at its next (replaying) task; a client must
    // have started the workflow itself, or address one that is among its customer's open processes.
    if (customerId === null) throw new WorkflowCustomerUnknownError(workflowId);
    return customerKeyId(customerId);
  }

  /**
   * Every payload must be one this codec wrote, for the workflow it arrives in: plaintext, one
   * that does not decrypt, or one written for another workflow (ciphertext copied from another
   * history) is refused — thrown in a client, the mark in a worker.
   */
  async decode(payloads: Payload[], context?: SerializationContext): Promise<Payload[]> {
    return Promise.all(
      payloads.map(async (p) => {
        if (!isEncrypted(p))
          return this.refuse(
            context,
            `a payload Persona's codec did not write (encoding ${encodingOf(p)}, not ${ENCRYPTED_ENCODING}) ` +
              'was refused: Persona acts only on what its own clients sent',
          );
        try {
          const actual = context?.workflowId;
          const bound = boundWorkflowId(p);
          if (actual !== undefined && !bindingHolds(bound, actual))
            throw new UnreadablePayloadError(
              payloadKeyId(p) ?? '',
              `a payload written for ${bound === null ? 'no workflow' : `workflow ${bound}`} arrived in ` +
                `workflow ${actual}: refused (copied from another history?)`,
            );
          const opened = await this.decodeOne(p);
          this.learnCustomer(p, bound);
          return opened;
        } catch (err) {
          if (!(err instanceof UnreadablePayloadError) || this.options.plaintext !== 'mark') throw err;
          return this.refuse(context, err.message);
        }
      }),
    );
  }

  /**
   * A payload that decrypted under a customer's key, bound to a customer workflow, says whose the
   * workflow is: remembered, so this process encodes the workflow's next payloads under that key.
   * The first one known stays: a payload under another customer's key (a report that named the
   * payment for another customer, let through) is still read — it is authentic and bound to this
   * workflow, and refusing it would depend on which payload a replay happened to decode first.
   */
  private learnCustomer(payload: Payload, bound: string | null): void {
    const keyId = payloadKeyId(payload);
    if (!this.historyKeys || bound === null || !keyId?.startsWith(HISTORY_KEY_PREFIX)) return;
    const customerId = customerOfKeyId(keyId.slice(HISTORY_KEY_PREFIX.length));
    if (customerId === null || historyKeyOwner({ type: 'workflow', namespace: '', workflowId: bound }) === null) return;
    this.historyKeys.learn(bound, customerId);
  }

  private refuse(context: SerializationContext | undefined, reason: string): Payload {
    const refusal: PayloadRefusal = {
      workflowId: context?.workflowId ?? null,
      activityId: context?.type === 'activity' ? (context.activityId ?? null) : null,
      reason,
    };
    this.options.onRefused?.(refusal);
    if (this.options.plaintext !== 'mark')
      throw new UnreadablePayloadError(
        '',
        `${refusal.reason}${refusal.workflowId ? ` (workflow ${refusal.workflowId})` : ''}`,
      );
    return {
      metadata: { [METADATA_ENCODING_KEY]: Buffer.from('json/plain') },
      data: Buffer.from(JSON.stringify({ [REFUSED_PAYLOAD_MARK]: refusal.reason })),
    };
  }

  /**
   * For the codec server: a payload this process cannot read (its key destroyed, or altered) is
   * handed back as it came; `unreadable` names the keys of those. Plaintext is shown as it is.
   */
  async decodeWhereReadable(payloads: Payload[]): Promise<{ payloads: Payload[]; unreadable: string[] }> {
    const unreadable: string[] = [];
    const out = await Promise.all(
      payloads.map(async (p) => {
        try {
          return await this.decodeOne(p);
        } catch (err) {
          if (!(err instanceof UnreadablePayloadError)) throw err;
          unreadable.push(err.keyId);
          return p;
        }
      }),
    );
    return { payloads: out, unreadable };
  }

  private async decodeOne(payload: Payload): Promise<Payload> {
    if (!isEncrypted(payload)) return payload;
    const keyId = payloadKeyId(payload);
    if (!keyId) throw new UnreadablePayloadError('', 'an encrypted payload without its encryption-key-id');
    let key: Buffer | null | undefined;
    try {
      key = keyId.startsWith(HISTORY_KEY_PREFIX)
        ? await this.historyKeys?.keyFor(keyId.slice(HISTORY_KEY_PREFIX.length), { create: false })
        : this.ring.get(keyId);
    } catch (err) {
      if (err instanceof HistoryKeyUnreadableError) throw new UnreadablePayloadError(keyId, err.message);
      throw err;
    }
    if (!key) throw new PayloadKeyUnavailableError(keyId);
    return this.open(key, keyId, payload);
  }

  private open(key: Buffer, keyId: string, payload: Payload): Payload {
    try {
      return open(key, keyId, payload);
    } catch (err) {
      throw new UnreadablePayloadError(
        keyId,
        `a payload under ${keyId} does not decrypt (altered, or not Persona's): ` +
          (err instanceof Error ? err.message : String(err)),
      );
    }
  }
}

/**
 * The codec every Temporal client and worker of Persona uses, with history keys kept in memory
 * for PERSONA_HISTORY_KEY_CACHE_TTL_MS:
 *   - `all`: a worker's (it decodes every task of an open workflow; erasure destroys keys only
 *     once the customer's open processes have closed, so a worker never needs a destroyed one);
 *   - `encode`: an api's client — starts and signals use the cache, but every decode (a status,
 *     a result) reads the key from the graph, so what an erasure destroyed is unreadable at once;
 *   - `none`: the codec server's.
 * Which customer each workflow is, is the process's (`processWorkflowCustomers`) unless
 * `workflowCustomers` says otherwise (a test's fresh process).
 */
export function payloadCodecFromConfig(
  config: Pick<
    Config,
    | 'payloadKeys'
    | 'PERSONA_HISTORY_KEY_CACHE_ENTRIES'
    | 'PERSONA_HISTORY_KEY_CACHE_TTL_MS'
    | 'PERSONA_HISTORY_RETENTION_DAYS'
  >,
  graph: Graph,
  cache: 'all' | 'encode' | 'none',
  workflowCustomers?: WorkflowCustomers,
): PersonaPayloadCodec {
  const maxEntries = cache === 'none' ? 0 : config.PERSONA_HISTORY_KEY_CACHE_ENTRIES;
  const options = {
    maxEntries,
    ttlMs: config.PERSONA_HISTORY_KEY_CACHE_TTL_MS,
    decodes: cache === 'all',
    onboardingKeyDays: config.PERSONA_HISTORY_RETENTION_DAYS,
    ...(workflowCustomers ? { workflowCustomers } : {}),
  };
  return new PersonaPayloadCodec(config.payloadKeys, graphHistoryKeys(graph, config.payloadKeys, options));
}
