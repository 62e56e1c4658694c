/**
 * The payload codec's service keys (temporal/payloadCodec.ts), from `PERSONA_PAYLOAD_KEYS`:
 * `id:base64[,id:base64…]`, each 32 bytes, the first one active. Kept apart from the codec so
 * that configuration loads it without the Temporal SDK.
 */
import { randomBytes } from 'node:crypto';

const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

export interface PayloadKey {
  id: string;
  key: Buffer;
}

/** The service keys: the first is the active one (it encrypts); all of them decrypt. */
export class PayloadKeyRing {
  private readonly byId: Map<string, Buffer>;
  readonly active: PayloadKey;

  constructor(keys: PayloadKey[]) {
    const first = keys[0];
    if (!first) throw new Error('a payload key ring needs at least one key');
    this.active = first;
    this.byId = new Map();
    for (const k of keys) {
      if (!KEY_ID.test(k.id)) throw new Error(`payload key id "${k.id}" must match ${KEY_ID.source}`);
      if (k.key.length !== 32) throw new Error(`payload key ${k.id} must be 32 bytes (got ${k.key.length})`);
      if (this.byId.has(k.id)) throw new Error(`payload key id ${k.id} appears twice`);
      this.byId.set(k.id, k.key);
    }
  }

  get(id: string): Buffer | undefined {
    return this.byId.get(id);
  }

  get ids(): string[] {
    return [...this.byId.keys()];
  }
}

/**
 * Parses `PERSONA_PAYLOAD_KEYS`: `id:base64[,id:base64…]`, the first key active. Throws an Error
 * naming what is wrong (never echoing key material).
 */
export function parsePayloadKeys(spec: string): PayloadKeyRing {
  const keys = spec
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part, n) => {
      const colon = part.indexOf(':');
      if (colon <= 0) throw new Error(`entry ${n + 1} must be <key id>:<32 bytes, base64>`);
      return { id: part.slice(0, colon), key: Buffer.from(part.slice(colon + 1), 'base64') };
    });
  return new PayloadKeyRing(keys);
}

/** A new key ring entry: what the stack writes locally and the runbook's rotation creates. */
export function newPayloadKeySpec(id: string): string {
  return `${id}:${randomBytes(32).toString('base64')}`;
}
