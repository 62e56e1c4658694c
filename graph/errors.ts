/**
 * Domain errors of the identity graph. The graph module never lets a raw Neo4j error escape for
 * something the caller did (a duplicate, a missing node, bad input): those become one of these,
 * which the api maps to 4xx problem+json or gRPC status codes.
 */
import { Neo4jError } from 'neo4j-driver';

export type DomainErrorCode = 'not_found' | 'conflict' | 'invalid_input' | 'invalid_state' | 'unrecognisable_input';

export abstract class DomainError extends Error {
  abstract readonly code: DomainErrorCode;
}

export class NotFoundError extends DomainError {
  readonly code = 'not_found';
  constructor(
    readonly entity: string,
    readonly id: string,
  ) {
    super(`${entity} ${id} not found`);
    this.name = 'NotFoundError';
  }
}

/**
 * A uniqueness rule refused the write. `label` and `properties` say which rule; the conflicting
 * value is deliberately not in the message (it may be an email or phone number).
 */
export class ConflictError extends DomainError {
  readonly code = 'conflict';
  constructor(
    message: string,
    readonly label?: string,
    readonly properties: string[] = [],
  ) {
    super(message);
    this.name = 'ConflictError';
  }
}

/** Input that breaks the graph's rules; `field` names the offending field (snake_case path). */
export class InvalidInputError extends DomainError {
  readonly code = 'invalid_input';
  constructor(
    readonly field: string,
    /** What is wrong, without the field's name (the message has both). */
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = 'InvalidInputError';
  }
}

/**
 * Input that is valid in form but holds nothing the graph can use: an onboarding whose every
 * identity fact is a placeholder (`null`, `test@test.com`). 422, not 400: nothing in it is
 * malformed.
 */
export class UnrecognisableInputError extends DomainError {
  readonly code = 'unrecognisable_input';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'UnrecognisableInputError';
  }
}

/** The write is well-formed but not allowed in the entity's current state. */
export class InvalidStateError extends DomainError {
  readonly code = 'invalid_state';
  constructor(message: string) {
    super(message);
    this.name = 'InvalidStateError';
  }
}

/**
 * A write addressed to the tombstone of a merge (graph/identityMerge.ts): refused, writing nothing, with
 * the survivor named so that the caller can send it there (409; gRPC FAILED_PRECONDITION).
 */
export class CustomerMergedError extends InvalidStateError {
  constructor(
    readonly customerId: string,
    readonly survivorId: string,
  ) {
    super(`customer ${customerId} was merged into ${survivorId}: use ${survivorId}`);
    this.name = 'CustomerMergedError';
  }
}

const CONSTRAINT_VIOLATION = 'Neo.ClientError.Schema.ConstraintValidationFailed';

/**
 * Turns a Neo4j constraint violation into a ConflictError naming the label and properties of
 * the rule (parsed from the server's message, whose values are dropped). Other errors pass
 * through unchanged.
 */
export function mapNeo4jError(err: unknown): unknown {
  if (err instanceof Neo4jError && err.code === CONSTRAINT_VIOLATION) {
    const label = /label `([^`]+)`/.exec(err.message)?.[1];
    const properties = [...err.message.matchAll(/`([^`]+)` = /g)].map((m) => m[1] as string);
    const what = label ? `${label} with this ${properties.join(' and ') || 'key'}` : 'an entity with this key';
    return new ConflictError(`${what} already exists`, label, properties);
  }
  return err;
}
