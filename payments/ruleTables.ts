/**
 * The network-rule tables (config/network-rules/<version>.json), read and checked once when a
 * process starts: a table that does not parse, names no source, or has a rule the governor cannot
 * read stops the process with the file and the field, never a retry made under a half-read rule.
 * `PERSONA_NETWORK_RULES_VERSION` picks one; the newest version (they sort by name) by default.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { DECLINE_CODES, type DeclineCode } from './declines';
import { durationMs, type RuleTable } from './networkRules';

/**
 * `config/network-rules`, the nearest up from this module (it lives in `<root>/payments`; compiled
 * into an entry point of the image, in `<root>/<dir>/…`).
 */
export const RULE_TABLES_DIR = rulesAbove(path.dirname(fileURLToPath(import.meta.url)));

function rulesAbove(dir: string): string {
  for (let d = dir; path.dirname(d) !== d; d = path.dirname(d))
    if (existsSync(path.join(d, 'config', 'network-rules'))) return path.join(d, 'config', 'network-rules');
  return path.join(dir, '..', 'config', 'network-rules');
}

const YEAR_MS = 366 * 86_400_000;
const duration = z.string().refine(
  (d) => {
    try {
      const ms = durationMs(d);
      return ms > 0 && ms <= YEAR_MS;
    } catch {
      return false;
    }
  },
  { message: 'a duration such as 90m, 24h or 30d, at most a year' },
);

/** The networks a rule may name; `*` is every network, `other` every network no rule names. */
export const RULE_NETWORKS = ['visa', 'mastercard', 'amex', 'discover', 'jcb', 'unionpay', 'diners', '*', 'other'];

const match = z
  .strictObject({
    categories: z.array(z.number().int().min(1).max(4)).min(1).optional(),
    advice_codes: z
      .array(z.string().regex(/^\d{2}$/))
      .min(1)
      .optional(),
    decline_codes: z
      .array(z.enum(DECLINE_CODES as [DeclineCode, ...DeclineCode[]]))
      .min(1)
      .optional(),
    do_not_retry: z.literal(true).optional(),
  })
  .refine((m) => Object.keys(m).length > 0, { message: 'a match names at least one condition' });

const base = {
  id: z.string().regex(/^[a-z0-9-]+$/),
  network: z.enum(RULE_NETWORKS as [string, ...string[]]),
  source: z.string().min(20),
};

const rule = z.discriminatedUnion('kind', [
  z.strictObject({ ...base, kind: z.literal('never_after'), match, permanent: z.boolean().optional() }),
  z.strictObject({ ...base, kind: z.literal('updater_first'), match }),
  z.strictObject({ ...base, kind: z.literal('not_before'), match, after: duration }),
  z.strictObject({
    ...base,
    kind: z.literal('cap'),
    counts: z.enum(['attempts', 'declines', 'reattempts']),
    match: match.optional(),
    max: z.number().int().min(1),
    window: duration,
  }),
]);

const table = z
  .strictObject({
    version: z.string().regex(/^\d{4}-\d{2}(-[a-z0-9]+)?$/),
    effective: z.iso.date(),
    description: z.string().min(1),
    visa_categories: z.strictObject({
      source: z.string().min(20),
      codes: z.record(
        z.string(),
        z.strictObject({
          response_code: z.string().regex(/^[0-9A-Z]{2}$/),
          category: z.union([z.literal(1), z.literal(2), z.literal(3), z.literal(4)]),
        }),
      ),
    }),
    rules: z.array(rule).min(1),
  })
  .superRefine((t, ctx) => {
    const seen = new Set<string>();
    t.rules.forEach((r, i) => {
      if (seen.has(r.id)) ctx.addIssue({ code: 'custom', path: ['rules', i, 'id'], message: `${r.id} twice` });
      seen.add(r.id);
      if (r.kind === 'cap' && r.counts === 'reattempts' && !r.match)
        ctx.addIssue({ code: 'custom', path: ['rules', i, 'match'], message: 'a reattempt cap names the declines' });
      if (r.kind === 'cap' && r.counts === 'attempts' && r.match)
        ctx.addIssue({ code: 'custom', path: ['rules', i, 'match'], message: 'a cap of all charges matches nothing' });
      // Conditions only one network's declines carry would never fire on another's.
      if (r.match?.categories && r.network !== 'visa')
        ctx.addIssue({ code: 'custom', path: ['rules', i, 'match', 'categories'], message: 'categories are Visa’s' });
      if (r.match?.advice_codes && r.network !== 'mastercard')
        ctx.addIssue({
          code: 'custom',
          path: ['rules', i, 'match', 'advice_codes'],
          message: 'advice codes are Mastercard’s',
        });
    });
  });

/** The versions on disk, oldest first. */
export function ruleTableVersions(dir = RULE_TABLES_DIR): string[] {
  return readdirSync(dir)
    .filter((f) => /^\d{4}-\d{2}(-[a-z0-9]+)?\.json$/.test(f))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

/** One table, checked; the newest when no version is given. */
export function loadRuleTable(version?: string, dir = RULE_TABLES_DIR): RuleTable {
  const versions = ruleTableVersions(dir);
  const wanted = version ?? versions[versions.length - 1];
  if (!wanted || !versions.includes(wanted))
    throw new Error(
      `PERSONA_NETWORK_RULES_VERSION: no network-rule table ${wanted ?? ''} (there are: ${versions.join(', ')})`,
    );
  const file = path.join(dir, `${wanted}.json`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: not JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  const parsed = table.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${file}: ${issue?.path.join('.') || '(table)'}: ${issue?.message ?? 'invalid'}`);
  }
  if (parsed.data.version !== wanted) throw new Error(`${file}: version says ${parsed.data.version}`);
  return parsed.data;
}
