/**
 * gRPC messages as the services take them, and back: proto3 fields read like the REST route's JSON
 * and checked with its schema (the same fields refused with the same words), answers with proto3's
 * empty values where JSON has null.
 */
import type { z } from 'zod';
import type { WalletItem } from '../../proto/generated/persona/v1/WalletItem';
import { InvalidInputError } from '../../graph/errors';
import type { walletItem } from '../services/customers';
import { consistencyTokenField, issueField, parseConsistencyToken } from '../requests';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function uuidField(value: string | undefined, field: string): string {
  if (!value) throw new InvalidInputError(field, 'required');
  if (!UUID.test(value)) throw new InvalidInputError(field, 'must be a UUID');
  return value;
}

/** Drops proto3 presence markers (`_field`) and unset values, so the object reads like JSON. */
export function plain<T extends object>(message: T | null | undefined): Record<string, unknown> | undefined {
  if (!message) return undefined;
  return Object.fromEntries(
    Object.entries(message).filter(([k, v]) => !k.startsWith('_') && v !== undefined && v !== null),
  );
}

export function toWalletItem(item: ReturnType<typeof walletItem> & { customer_id?: string }): WalletItem {
  return {
    id: item.id,
    type: item.type,
    status: item.status,
    brand: item.brand ?? '',
    last_four: item.last_four ?? '',
    expiry_month: item.expiry_month ?? 0,
    expiry_year: item.expiry_year ?? 0,
    is_default: item.is_default,
    last_used: item.last_used ?? '',
    customer_id: item.customer_id ?? '',
  };
}

/** Parses a message with the REST route's schema: the same fields refused with the same words. */
export function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new InvalidInputError(issue ? issueField(issue) : 'body', issue?.message ?? 'invalid');
}

/** `min_version`: empty for none, else a consistency token (INVALID_ARGUMENT naming the field). */
export function minVersionField(value: string | undefined) {
  if (!value) return null;
  const parsed = consistencyTokenField.safeParse(value);
  if (!parsed.success) throw new InvalidInputError('min_version', parsed.error.issues[0]?.message ?? 'invalid');
  return parseConsistencyToken(parsed.data);
}
