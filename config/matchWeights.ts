/**
 * How much each kind of evidence counts towards a possible match's score (graph/matchScore.ts),
 * from `PERSONA_MATCH_WEIGHTS`: a JSON object naming the weights to change, the others keep their
 * defaults, e.g. `{"device": 10, "address": 5}`. Each weight is whole points from 0 to 100; a
 * match's score is the sum of its parts' points, at most 100. Kept apart from the scoring so that
 * configuration loads it without the graph.
 */
import { z } from 'zod';

const points = z.number().int('expected whole points').min(0).max(100);

/** Every weight, in points (0–100). */
export const matchWeightsSchema = z.strictObject({
  /** The same email or phone number, verified on both records. */
  verified_identifier: points,
  /** The same email or phone number, verified on one record only. */
  partly_verified_identifier: points,
  /** The same email or phone number, verified on neither record (or not known to be verified on either). */
  unverified_identifier: points,
  /** A card with the same processor card fingerprint on both records. */
  card_fingerprint: points,
  /**
   * A device both log in from, when only the two of them use it; a device of n customers (n at most
   * PERSONA_SHARED_DEVICE_LIMIT) gives this × 2 / n, one of more customers nothing.
   */
  device: points,
  /** The same address after normalisation. */
  address: points,
});
export type MatchWeights = z.infer<typeof matchWeightsSchema>;

/**
 * The defaults: an identifier verified on both sides is strong, one verified on one side less so,
 * an unverified one medium; the same card (the processor's fingerprint) is strong; a device or an
 * address, which families and flatmates share, is weak on its own.
 */
export const DEFAULT_MATCH_WEIGHTS: Readonly<MatchWeights> = Object.freeze({
  verified_identifier: 60,
  partly_verified_identifier: 40,
  unverified_identifier: 25,
  card_fingerprint: 50,
  device: 20,
  address: 15,
});

/**
 * `PERSONA_MATCH_WEIGHTS` as config/env.ts parses it: JSON, only known weights, each whole points
 * 0–100, merged over the defaults. An issue names the weight (`PERSONA_MATCH_WEIGHTS.device: …`).
 */
export const matchWeightsVariable = z
  .string()
  .default('{}')
  .transform((text, ctx): unknown => {
    try {
      return JSON.parse(text);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'expected a JSON object of weights such as {"device": 10}' });
      return z.NEVER;
    }
  })
  .pipe(matchWeightsSchema.partial())
  .transform((w): MatchWeights => ({ ...DEFAULT_MATCH_WEIGHTS, ...w }));
