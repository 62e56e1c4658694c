/**
 * The request id travels into Temporal as a header, `persona-request-id`: the api's client
 * puts it on every start and signal, the workflow's interceptors pass it on to its activities,
 * continue-as-new runs and signals, and every worker log line of the workflow carries it.
 */
import { defaultPayloadConverter, type Payload } from '@temporalio/common';

export const REQUEST_ID_HEADER_KEY = 'persona-request-id';

export type Headers = Record<string, Payload>;

/** `headers` with the request id added (unchanged when there is none). */
export function withRequestId(headers: Headers, requestId: string | undefined): Headers {
  return requestId ? { ...headers, [REQUEST_ID_HEADER_KEY]: defaultPayloadConverter.toPayload(requestId) } : headers;
}

/** The request id a message carries, if any. */
export function requestIdOf(headers: Headers | null | undefined): string | undefined {
  const payload = headers?.[REQUEST_ID_HEADER_KEY];
  if (!payload) return undefined;
  const value: unknown = defaultPayloadConverter.fromPayload(payload);
  return typeof value === 'string' ? value : undefined;
}
