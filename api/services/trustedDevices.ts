/**
 * What an api process remembers of the trusted-device reports it starts (api/services/context.ts):
 * the day's workflow ids it already started, or found started, so a checkout costs no second
 * round trip; and when it last warned that a report could not start, so that it says so once a
 * minute, not per checkout. Built once with the process's deps (api/deps.ts
 * `ApiDeps.trustedDeviceReports`).
 */
export class TrustedDeviceReports {
  private readonly started = new Set<string>();
  private lastWarnedAt = 0;

  constructor(
    /** Ids remembered at most: past that the memory starts again (a report is idempotent). */
    private readonly limit = 50_000,
    private readonly warnEveryMs = 60_000,
  ) {}

  /** Whether the report `workflowId` was started (or found started) by this process. */
  has(workflowId: string): boolean {
    return this.started.has(workflowId);
  }

  remember(workflowId: string): void {
    if (this.started.size >= this.limit) this.started.clear();
    this.started.add(workflowId);
  }

  /** Whether to warn now: true at most once per `warnEveryMs` (and counted as said). */
  mayWarn(now: number = Date.now()): boolean {
    if (now - this.lastWarnedAt < this.warnEveryMs) return false;
    this.lastWarnedAt = now;
    return true;
  }
}
