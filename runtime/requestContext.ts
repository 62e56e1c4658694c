/**
 * The request id: one per request the api answers, taken from the caller's `X-Request-Id` when
 * it is a sensible one (else made up), and carried — through an AsyncLocalStorage here, through
 * a Temporal header beyond the process — into every log line the request causes, in the api and
 * in the workflows and activities it starts or signals.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';

/** The HTTP header (and gRPC metadata key) a request id arrives and leaves in. */
export const REQUEST_ID_HEADER = 'x-request-id';

/** What a caller may send as its request id: 1–128 letters, digits and . _ : - */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface RequestScope {
  requestId: string;
  /** Set when the caller has been answered without the work (out of time): it must not commit. */
  abandoned?: boolean;
  /** When the caller is answered 503 if the work has not ended (Date.now() ms); unset for no limit. */
  deadlineAt?: number;
}

/** Which request the code running now serves. One per process, built in its entry point. */
export class RequestContext {
  readonly #storage = new AsyncLocalStorage<RequestScope>();

  run<T>(scope: RequestScope, work: () => T): T {
    return this.#storage.run(scope, work);
  }

  /** The request id of the work in progress, if it serves one. */
  get requestId(): string | undefined {
    return this.#storage.getStore()?.requestId;
  }

  /** Marks the request in progress as answered without its work: what it still runs must not commit. */
  abandon(): void {
    const scope = this.#storage.getStore();
    if (scope) scope.abandoned = true;
  }

  /** Sets when the request in progress is answered 503 if its work has not ended (api/deadlines.ts). */
  setDeadline(at: number): void {
    const scope = this.#storage.getStore();
    if (scope) scope.deadlineAt = at;
  }

  /** How long the request in progress has left before that answer; undefined without a deadline. */
  get msLeft(): number | undefined {
    const at = this.#storage.getStore()?.deadlineAt;
    return at === undefined ? undefined : at - Date.now();
  }

  /** Whether the request in progress was abandoned (false outside a request). */
  get abandoned(): boolean {
    return this.#storage.getStore()?.abandoned === true;
  }
}

/** The caller's request id when it is a sensible one, else a new one. */
export function requestIdFrom(sent: string | null | undefined): string {
  return sent && REQUEST_ID.test(sent) ? sent : randomUUID();
}
