/**
 * What the customer's own page (api/console/me.tsx) says, and whose page it is: a card in words, its
 * expiry, the default the graph will promote, a device's trust, how old a sign-in may be. Pure.
 */
import type { Principal } from '../auth';
import type { walletItem } from '../services/customers';

export type Card = ReturnType<typeof walletItem>;

/** History entries per page. */
export const HISTORY_PAGE = 20;

/** Where a customer signs in again (the step-up), back to their page. */
export const SIGN_IN_AGAIN = '/console/sign-in?next=%2Fconsole%2Fme';

/** The customer a session is: a customer's own token's subject; null for anyone else (no "me"). */
export function selfOf(principal: Principal): string | null {
  return principal.scopes.has('self') && principal.subject ? principal.subject : null;
}

/** A card in words: `Visa ending 4242`; another kind of method by its type. */
export function cardWords(card: Pick<Card, 'type' | 'brand' | 'last_four'>): string {
  if (card.type !== 'card')
    return `${card.type.replace(/_/g, ' ')}${card.last_four ? ` ending ${card.last_four}` : ''}`;
  const brand = card.brand ? card.brand.charAt(0).toUpperCase() + card.brand.slice(1) : 'Card';
  return `${brand}${card.last_four ? ` ending ${card.last_four}` : ''}`;
}

/** `12/2031`; '—' without an expiry. */
export function expiryWords(card: Pick<Card, 'expiry_month' | 'expiry_year'>): string {
  return card.expiry_month && card.expiry_year
    ? `${String(card.expiry_month).padStart(2, '0')}/${card.expiry_year}`
    : '—';
}

/**
 * The card that becomes the default when `removedId` (the default) goes: the graph promotes the
 * most recently used active method left (graph/paymentMethods.ts), the wallet's own order after
 * the default. Null when none is left.
 */
export function nextDefault(wallet: readonly Card[], removedId: string): Card | null {
  return wallet.find((c) => c.id !== removedId && c.status === 'active') ?? null;
}

/** A trust score in words, never by colour alone: `0.80 (trusted)`. */
export function trustWords(score: number, threshold: number): string {
  return `${score.toFixed(2)} (${score >= threshold ? 'trusted' : 'not trusted'})`;
}

/** `5 minutes`, `90 seconds`. */
export function durationWords(seconds: number): string {
  if (seconds % 60 !== 0) return `${seconds} seconds`;
  const minutes = seconds / 60;
  return `${minutes} minute${minutes === 1 ? '' : 's'}`;
}

/** Whether the session's sign-in is too old for export and erasure (the step-up rule). */
export function signInTooOld(principal: Principal, windowSeconds: number, nowMs = Date.now()): boolean {
  const at = principal.authTime ?? null;
  return at === null || Math.floor(nowMs / 1000) - at > windowSeconds;
}
