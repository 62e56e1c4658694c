/**
 * What a test token says about its card (test tokens spell it out): its network, its identity and
 * fingerprint, and what the network adds to a decline.
 */
import { createHash } from 'node:crypto';
import type { RuleTable } from '../../payments/networkRules';

const NETWORKS = ['mastercard', 'visa', 'amex', 'discover'] as const;

/** The network a test token names (a `_`-separated part of it: `tok_amex_card-visa01` is Amex); else visa. */
export function networkOfToken(token: string): string {
  return token.split('_').find((part): part is (typeof NETWORKS)[number] => NETWORKS.includes(part as never)) ?? 'visa';
}

export const digest = (s: string) => createHash('sha256').update(s).digest('hex');

/** The card a token stands for: `card-<id>` when the token names one, else a digest of the token. */
export const cardIdentity = (token: string) => /card-([A-Za-z0-9]+)/.exec(token)?.[1] ?? digest(token).slice(0, 16);

/** The card's fingerprint: the same for every token of one card identity (it survives re-tokenisation). */
export function fingerprintOfToken(token: string): string {
  return `fp_${digest(cardIdentity(token)).slice(0, 24)}`;
}

/** What the network adds to a decline: Visa's response code and category, Mastercard's advice code. */
export function networkDecline(table: RuleTable, network: string, token: string, code: string) {
  if (network === 'visa') {
    const entry = table.visa_categories.codes[code];
    return { network_response_code: entry?.response_code ?? '05', category: entry?.category ?? 4, advice_code: null };
  }
  const mac = network === 'mastercard' ? (/mac_(\d{2})(?!\d)/.exec(token)?.[1] ?? null) : null;
  return { network_response_code: null, category: null, advice_code: mac };
}
