/**
 * An encrypted payload's shape, as Persona's codec (temporal/payloadCodec.ts) writes and reads it:
 * AES-256-GCM over the whole original payload, its 12-byte IV first and 16-byte tag last, with
 * the key's id (`encryption-key-id`) and the workflow it was written for (`encryption-workflow-id`)
 * in its metadata and both in the additional authenticated data, so that it cannot be moved under
 * another key or into another workflow. Which key a payload takes is the codec's.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { METADATA_ENCODING_KEY, type Payload } from '@temporalio/common';
import proto from '@temporalio/proto';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
/** The workflow a payload was written for: bound into the cipher, checked where it arrives. */
export const WORKFLOW_ID_METADATA = 'encryption-workflow-id';
/** A history key's id in a payload's metadata: `history:customer:<id>` or `history:<onboarding id>`. */
export const HISTORY_KEY_PREFIX = 'history:';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** A payload's encoding, as its metadata names it ('none' without one). */
export function encodingOf(payload: Payload): string {
  const encoding = payload.metadata?.[METADATA_ENCODING_KEY];
  return encoding ? Buffer.from(encoding).toString() : 'none';
}

/** Whether a payload is one this codec's envelope encrypted. */
export function isEncrypted(payload: Payload): boolean {
  const encoding = payload.metadata?.[METADATA_ENCODING_KEY];
  return encoding !== undefined && encoding !== null && Buffer.from(encoding).toString() === ENCRYPTED_ENCODING;
}

/** The key id an encrypted payload names (`history:customer:<id>`, `history:<workflow id>` or a service key id). */
export function payloadKeyId(payload: Payload): string | null {
  const id = payload.metadata?.[KEY_ID_METADATA];
  return id ? Buffer.from(id).toString() : null;
}

/** The history key a payload names, as the graph knows it (`customer:<id>`, an onboarding's id), or null. */
export function historyKeyIdOf(payload: Payload): string | null {
  const keyId = payloadKeyId(payload);
  return keyId?.startsWith(HISTORY_KEY_PREFIX) ? keyId.slice(HISTORY_KEY_PREFIX.length) : null;
}

/** The additional authenticated data: the key id, and the workflow the payload was written for. */
function aad(keyId: string, bound: string | null): Buffer {
  return Buffer.from(bound === null ? keyId : `${keyId}\u0000${bound}`);
}

/** The workflow an encrypted payload was written for (null: written outside any workflow's context). */
export function boundWorkflowId(payload: Payload): string | null {
  const id = payload.metadata?.[WORKFLOW_ID_METADATA];
  return id ? Buffer.from(id).toString() : null;
}

/** The payload encrypted under `key`, named `keyId`, bound to the workflow `bound` (null: none). */
export function seal(key: Buffer, keyId: string, bound: string | null, payload: Payload): Payload {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad(keyId, bound));
  const plain = proto.temporal.api.common.v1.Payload.encode(payload).finish();
  const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  return {
    metadata: {
      [METADATA_ENCODING_KEY]: Buffer.from(ENCRYPTED_ENCODING),
      [KEY_ID_METADATA]: Buffer.from(keyId),
      ...(bound === null ? {} : { [WORKFLOW_ID_METADATA]: Buffer.from(bound) }),
    },
    data: sealed,
  };
}

/** The payload `seal` made, opened with `key`; throws when it is truncated or was tampered with. */
export function open(key: Buffer, keyId: string, payload: Payload): Payload {
  const data = Buffer.from(payload.data ?? new Uint8Array());
  if (data.length < IV_BYTES + TAG_BYTES) throw new Error(`encrypted payload under ${keyId} is truncated`);
  const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
  decipher.setAAD(aad(keyId, boundWorkflowId(payload)));
  decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
  const plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
  const decoded = proto.temporal.api.common.v1.Payload.decode(plain);
  return { metadata: decoded.metadata ?? {}, data: decoded.data ?? new Uint8Array() };
}
