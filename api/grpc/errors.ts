/** Maps Persona's errors to gRPC status codes, the way REST maps them to HTTP statuses. */
import { status, type ServiceError } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import { Neo4jError } from 'neo4j-driver';
import { DomainError, InvalidInputError } from '../../graph/errors';
import type { Logger } from '../../runtime/logger';
import { AuthError } from '../auth';
import { IdempotencyKeyReusedError } from '../services/onboarding';

const UNAVAILABLE_NEO4J = new Set([
  'ServiceUnavailable',
  'SessionExpired',
  'Neo.TransientError.General.DatabaseUnavailable',
]);

function serviceError(code: status, details: string, field?: string): Partial<ServiceError> {
  const metadata = new Metadata();
  if (field) metadata.set('persona-field', field);
  return { code, details, metadata };
}

export function toGrpcError(err: unknown, logger: Logger): Partial<ServiceError> {
  if (err instanceof AuthError)
    return serviceError(err.status === 401 ? status.UNAUTHENTICATED : status.PERMISSION_DENIED, err.message);
  if (err instanceof InvalidInputError) return serviceError(status.INVALID_ARGUMENT, err.message, err.field);
  if (err instanceof IdempotencyKeyReusedError)
    return serviceError(status.ALREADY_EXISTS, err.message, 'idempotency_key');
  if (err instanceof DomainError) {
    const code = {
      not_found: status.NOT_FOUND,
      conflict: status.ALREADY_EXISTS,
      invalid_input: status.INVALID_ARGUMENT,
      invalid_state: status.FAILED_PRECONDITION,
    }[err.code];
    return serviceError(code, err.message);
  }
  if (err instanceof Neo4jError && (UNAVAILABLE_NEO4J.has(err.code) || err.code.startsWith('Neo.TransientError'))) {
    return serviceError(status.UNAVAILABLE, 'The identity graph is unavailable; retry shortly.');
  }
  if (err instanceof Error && /UNAVAILABLE|ECONNREFUSED|Connection refused|failed to connect/i.test(err.message)) {
    return serviceError(status.UNAVAILABLE, 'A dependency is unavailable; retry shortly.');
  }
  logger.error({ err }, 'unhandled gRPC error');
  return serviceError(status.INTERNAL, 'Internal error; it was logged.');
}
