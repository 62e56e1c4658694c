/**
 * Blocking: which records on file are worth scoring against a sign-up. Each record gives keys;
 * records sharing a key with the sign-up are its candidates. The keys are chosen so that one
 * person's records share at least one of them however the person typed: the whole name as it
 * sounds (Soundex), the given name's formal name (a nickname's: Bill, William) with the family
 * name's Soundex, the family name's Soundex with a postcode, or with the given initial and birth
 * year (either way round, for a swap), the name's letters (each part's sorted, for a transposed pair
 * of letters that changes a Soundex), the whole date of birth with an initial, an email and its
 * local part, a phone number, a card or a device fingerprint, an address.
 *
 * A key more records hold than `KEY_CAP` (a kiosk device, a company card, a forwarding address,
 * a common name in a busy postcode) is no signal and names no candidates; the candidates are at
 * most `CANDIDATE_CAP`, from the most specific keys first.
 */
import type { PreparedRecord } from './compare';
import { formalNames } from './nicknames';
import { soundex } from './strings';

/** A key held by more records than this names no candidates. */
export const KEY_CAP = 50;
/** At most this many candidates per sign-up. */
export const CANDIDATE_CAP = 200;

const pad = (n: number): string => String(n).padStart(2, '0');
const letters = (s: string): string => [...s.replace(/[^a-z]/g, '')].sort().join('');

/** A record's blocking keys, each once. */
export function blockingKeys(r: PreparedRecord): string[] {
  const keys = new Set<string>();
  const names: [string, string][] = [];
  if (r.given && r.family) names.push([r.given, r.family], [r.family, r.given]);
  for (const [given, family] of names) {
    const code = soundex(family);
    if (!code) continue;
    for (const a of r.addresses) if (a.postcode) keys.add(`name-postcode:${code}|${a.country}|${a.postcode}`);
    if (r.birth?.year) keys.add(`name-year:${code}|${given[0]}|${r.birth.year}`);
  }
  // The whole name, as it sounds (a name alone, typed differently, still finds its record).
  if (r.given && r.family) keys.add(`name:${soundex(r.given)}|${soundex(r.family)}`);
  // The given name's formal name with the family name as it sounds: a nickname finds its record (Bill, William).
  if (r.given && r.family)
    for (const formal of formalNames(r.given)) keys.add(`name-formal:${formal}|${soundex(r.family)}`);
  // The name's letters, each part's sorted, the parts in either order: a transposed pair of letters
  // (`iSngh` for Singh) or swapped names find their record where a Soundex changed.
  const parts = [letters(r.given ?? ''), letters(r.family ?? '')];
  if (parts.every((part) => part !== '')) keys.add(`name-letters:${parts.sort().join('|')}`);
  const b = r.birth;
  if (b?.year && b.month && b.day) {
    const initials = new Set([r.given?.[0], r.family?.[0]].filter(Boolean));
    for (const i of initials) keys.add(`birth:${b.year}-${pad(b.month)}-${pad(b.day)}|${i}`);
  }
  for (const e of r.emails) {
    keys.add(`email:${e.canonical}`);
    if (e.local.length >= 3) keys.add(`email-local:${e.local}`);
  }
  for (const p of r.phones) keys.add(`phone:${p.e164}`);
  for (const c of r.cards) if (c.fingerprint) keys.add(`card:${c.fingerprint}`);
  for (const d of r.devices) keys.add(`device:${d.fingerprint}`);
  for (const a of r.addresses) keys.add(`address:${a.key}`);
  return [...keys];
}

/** Records on file by key: the index a sign-up's candidates are read from. */
export class BlockingIndex {
  private readonly byKey = new Map<string, string[]>();

  add(r: PreparedRecord): void {
    for (const key of blockingKeys(r)) {
      const holders = this.byKey.get(key);
      if (!holders) this.byKey.set(key, [r.id]);
      else if (holders.length <= KEY_CAP) holders.push(r.id);
    }
  }

  /** The sign-up's candidates: records sharing a key no more than KEY_CAP hold, specific keys first. */
  candidates(r: PreparedRecord): string[] {
    const lists = blockingKeys(r)
      .map((k) => this.byKey.get(k) ?? [])
      .filter((l) => l.length > 0 && l.length <= KEY_CAP)
      .sort((a, b) => a.length - b.length);
    const out = new Set<string>();
    for (const list of lists) {
      for (const id of list) {
        if (id === r.id) continue;
        out.add(id);
        if (out.size >= CANDIDATE_CAP) return [...out];
      }
    }
    return [...out];
  }
}
