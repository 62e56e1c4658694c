/**
 * One message of the agents' topics as the consumer (api/kafkaConsumer.ts) reads it: its body
 * checked by the route's schema, its kind on the payment-failures topic, whether a failure to
 * handle it is a refusal for good (dead-lettered) or "not now" (retried), the principal its topic
 * acts as, and its headers' request id and trace around the work it starts.
 */
import type { Message } from '@platformatic/kafka';
import type { z } from 'zod';
import { KAFKA_HEADERS } from '../clients/kafka';
import { DomainError } from '../graph/errors';
import { requestIdFrom } from '../runtime/requestContext';
import { inSpan } from '../runtime/tracing';
import { UnreadablePayloadError } from '../temporal/payloadCodec';
import { AuthError, type Principal } from './auth';
import type { ApiDeps } from './deps';
import { issueField, NO_LONGER_OWED_KIND } from './requests';

export type Msg = Message<string, string, string, string>;

/** A message that can never be accepted: it goes to the dead-letter topic with this reason. */
export class Refused extends Error {
  constructor(
    readonly reason: string,
    readonly field?: string,
  ) {
    super(reason);
  }
}

/** Refusals of the service itself (a 4xx over HTTP) are for good; everything else is "not now". */
export function refusalOf(err: unknown): Refused | null {
  if (err instanceof Refused) return err;
  if (err instanceof DomainError || err instanceof AuthError || err instanceof UnreadablePayloadError)
    return new Refused(err.message, 'field' in err ? String(err.field) : undefined);
  return null;
}

/**
 * The kind of a message on the payment-failures topic: its `kind` field, absent for a failure
 * (every failure sent before kinds existed). Any other kind can never be accepted.
 */
export function failuresTopicKind(msg: Msg): 'failure' | 'no_longer_owed' {
  let json: unknown;
  try {
    json = JSON.parse(msg.value);
  } catch {
    return 'failure'; // refused as not JSON by the failure's parse
  }
  if (typeof json !== 'object' || json === null || !('kind' in json)) return 'failure';
  if (json.kind === NO_LONGER_OWED_KIND) return 'no_longer_owed';
  throw new Refused(`kind: must be ${NO_LONGER_OWED_KIND}, or absent for a payment failure`, 'kind');
}

/**
 * A message's value as the body the route takes, checked by the route's schema: one that is not
 * JSON or fails the schema is refused, naming the field, as the route answers a 400.
 */
export function parseBody<T>(msg: Msg, schema: z.ZodType<T>): T {
  let json: unknown;
  try {
    json = JSON.parse(msg.value);
  } catch {
    throw new Refused('the message is not JSON', 'value');
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue ? issueField(issue, 'value') : 'value';
  const problem = issue?.code === 'unrecognized_keys' ? 'unknown field' : (issue?.message ?? 'invalid');
  throw new Refused(`${field}: ${problem}`, field);
}

/** The principal a topic's messages act as: the scope the route demands of its caller. */
export function topicPrincipal(topic: string, scope: string): Principal {
  return { subject: `kafka:${topic}`, scopes: new Set([scope]) };
}

/** A header of a message, or undefined where it has none. */
function headerOf(m: Msg, name: string): string | undefined {
  return m.headers.get(name);
}

/**
 * Runs `work` as a request: its request id (the message's, else a new one) and its trace, as
 * `x-request-id` and `traceparent` carry them over HTTP.
 */
export function asRequest<T>(deps: ApiDeps, m: Msg, name: string, work: () => Promise<T>): Promise<T> {
  const requestId = requestIdFrom(headerOf(m, KAFKA_HEADERS.requestId));
  const carrier = (): Record<string, string> => {
    const tp = headerOf(m, KAFKA_HEADERS.traceparent);
    return tp ? { traceparent: tp } : {};
  };
  return inSpan(deps.tracer, `kafka ${name}`, carrier, (span) => {
    span?.setAttributes({
      'persona.request_id': requestId,
      'messaging.system': 'kafka',
      'messaging.destination.name': m.topic,
      'messaging.kafka.offset': Number(m.offset),
    });
    return deps.requests.run({ requestId }, work);
  });
}
