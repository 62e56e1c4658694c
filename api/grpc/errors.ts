/** Maps Persona's errors to gRPC status codes, the way REST maps them to HTTP statuses. */
import { status, type ServiceError } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import { DomainError, InvalidInputError } from '../../graph/errors';
import { unavailableDependency } from '../../runtime/dependencies';
import type { Logger } from '../../runtime/logger';
import { AuthError } from '../auth';
import { RateLimitedError } from '../rateLimit';
import { IdempotencyKeyReusedError } from '../services/onboarding';

function serviceError(code: status, details: string, field?: string): Partial<ServiceError> {
  const metadata = new Metadata();
  if (field) metadata.set('persona-field', field);
  return { code, details, metadata };
}

export function toGrpcError(err: unknown, logger: Logger): Partial<ServiceError> {
  if (err instanceof AuthError)
    return serviceError(err.status === 401 ? status.UNAUTHENTICATED : status.PERMISSION_DENIED, err.message);
  if (err instanceof RateLimitedError) {
    const limited = serviceError(status.RESOURCE_EXHAUSTED, err.message);
    limited.metadata?.set('retry-after', String(err.retryAfterSeconds));
    return limited;
  }
  if (err instanceof InvalidInputError) return serviceError(status.INVALID_ARGUMENT, err.message, err.field);
  if (err instanceof IdempotencyKeyReusedError)
    return serviceError(status.ALREADY_EXISTS, err.message, 'idempotency_key');
  if (err instanceof DomainError) {
    const code = {
      not_found: status.NOT_FOUND,
      conflict: status.ALREADY_EXISTS,
      invalid_input: status.INVALID_ARGUMENT,
      invalid_state: status.FAILED_PRECONDITION,
      unrecognisable_input: status.INVALID_ARGUMENT,
    }[err.code];
    return serviceError(code, err.message, 'field' in err ? (err.field as string) : undefined);
  }
  const unavailable = unavailableDependency(err);
  if (unavailable) {
    logger.warn({ dependency: unavailable.dependency, reason: unavailable.reason }, 'dependency unavailable');
    // As REST's Retry-After: a workflow no worker answers (a deploy) asks for a longer wait than a blip.
    const answer = serviceError(status.UNAVAILABLE, unavailable.message);
    answer.metadata?.set('retry-after', String(unavailable.retryAfterSeconds));
    return answer;
  }
  logger.error({ err }, 'unhandled gRPC error');
  return serviceError(status.INTERNAL, 'Internal error; it was logged.');
}
