/**
 * The mark a worker's payload codec (temporal/payloadCodec.ts) decodes a payload it did not write
 * to, and the check the workflow and activity interceptors make for it. Workflow-safe: no I/O.
 */

/** A JSON object with this one key stands where a refused payload came. Nothing Persona sends has it. */
export const REFUSED_PAYLOAD_MARK = 'persona:refused-payload';

/** The error type a workflow or activity fails with when its input was refused. */
export const PAYLOAD_REFUSED_TYPE = 'PayloadRefused';

/** True for the mark a worker's codec put where a payload it did not write came. */
export function isRefusedPayloadMark(value: unknown): boolean {
  return typeof value === 'object' && value !== null && REFUSED_PAYLOAD_MARK in value;
}

/** The reason the codec wrote into the first mark among `args`, or null when none is one. */
export function refusedPayloadReason(args: readonly unknown[]): string | null {
  const mark = args.find(isRefusedPayloadMark) as Record<string, unknown> | undefined;
  return mark ? String(mark[REFUSED_PAYLOAD_MARK]) : null;
}
