/**
 * A ring of named 32-byte keys, `id:base64[,id:base64…]`, the first one active: it encrypts, and
 * every key in the ring decrypts what names it. What the payload codec's service keys
 * (`PERSONA_PAYLOAD_KEYS`) and the payment-token keys (`PERSONA_TOKEN_KEYS`) are: a key is
 * rotated by putting a new one first and keeping the old one until nothing sealed under it
 * remains. Kept apart from what uses the keys so that configuration loads it alone.
 */
import { randomBytes } from 'node:crypto';

export const KEY_ID = /^[A-Za-z0-9_-]{1,64}$/;

export interface NamedKey {
  id: string;
  key: Buffer;
}

/** Named keys: the first is the active one (it encrypts); all of them decrypt. */
export class KeyRing {
  private readonly byId: Map<string, Buffer>;
  readonly active: NamedKey;

  /** `what` names the ring's keys in its errors ("payload key", "payment-token key"). */
  constructor(keys: NamedKey[], what = 'key') {
    const first = keys[0];
    if (!first) throw new Error(`a ${what} ring needs at least one key`);
    this.active = first;
    this.byId = new Map();
    for (const k of keys) {
      if (!KEY_ID.test(k.id)) throw new Error(`${what} id "${k.id}" must match ${KEY_ID.source}`);
      if (k.key.length !== 32) throw new Error(`${what} ${k.id} must be 32 bytes (got ${k.key.length})`);
      if (this.byId.has(k.id)) throw new Error(`${what} id ${k.id} appears twice`);
      this.byId.set(k.id, k.key);
    }
  }

  get(id: string): Buffer | undefined {
    return this.byId.get(id);
  }

  get ids(): string[] {
    return [...this.byId.keys()];
  }

  /** Keeps key material out of logs and inspection. */
  toJSON(): string {
    return `KeyRing(${this.ids.join(',')})`;
  }
}

/**
 * Parses `id:base64[,id:base64…]`, the first key active. Throws an Error naming what is wrong
 * (never echoing key material).
 */
export function parseKeyRing(spec: string, what = 'key'): KeyRing {
  const keys = spec
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part, n) => {
      const colon = part.indexOf(':');
      if (colon <= 0) throw new Error(`entry ${n + 1} must be <key id>:<32 bytes, base64>`);
      return { id: part.slice(0, colon), key: Buffer.from(part.slice(colon + 1), 'base64') };
    });
  return new KeyRing(keys, what);
}

/** A new ring entry: what the stack writes locally and a rotation in the runbook creates. */
export function newKeySpec(id: string): string {
  return `${id}:${randomBytes(32).toString('base64')}`;
}
