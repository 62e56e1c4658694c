/**
 * docs/workflows.md "Every wait and its deadline", kept true by the code: every wait in
 * workflows/*.ts has a row, and every row names code that exists. A wait is
 *   - a `condition(…)` (but the drain of a workflow's own handlers, `condition(allHandlersFinished)`),
 *   - a `sleep(…)`,
 *   - an activity profile whose retries have no limit — no `maximumAttempts` (or an infinite one)
 *     and no `scheduleToCloseTimeout`, in workflows/activityOptions.ts or a workflow's own — where a
 *     workflow uses it, and an infinite `maximumAttempts` written inline.
 * A row covers a wait when its code (the backticked text of the "code" column) is in the wait's
 * line or the few lines around it (8 before, 3 after), in the same file.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../config/env';

const WORKFLOWS = path.join(repoRoot, 'workflows');
const doc = readFileSync(path.join(repoRoot, 'docs', 'workflows.md'), 'utf8');

interface Row {
  file: string;
  code: string;
  cells: string[];
}

/** The table's rows: file (column 1), what it waits on, code, deadline, what becomes visible, the way out. */
function tableRows(): Row[] {
  const section = doc.split(/^## /m).find((s) => s.startsWith('Every wait and its deadline'));
  if (!section) throw new Error('docs/workflows.md has no section "Every wait and its deadline"');
  return section
    .split('\n')
    .filter((line) => line.startsWith('| `workflows/'))
    .map((line) => {
      const cells = line
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((c) => c.trim());
      const code = /^`(.+)`$/.exec(cells[2] ?? '')?.[1];
      if (!code) throw new Error(`a row without its code in backticks: ${line}`);
      return { file: (/^`(workflows\/\w+\.ts)`$/.exec(cells[0] ?? '')?.[1] ?? cells[0]) as string, code, cells };
    });
}

/** Names of `const X: ActivityOptions = {…}` profiles in `source` whose retries never stop. */
function unlimitedProfiles(source: string): string[] {
  const names: string[] = [];
  for (const m of source.matchAll(/const (\w+): ActivityOptions = \{([\s\S]*?)\n\};/g)) {
    const body = m[2] as string;
    const attempts = /maximumAttempts: ([\w.]+)/.exec(body)?.[1];
    const limited = (attempts && !/Infinity|POSITIVE_INFINITY/.test(attempts)) || /scheduleToCloseTimeout/.test(body);
    if (!limited) names.push(m[1] as string);
  }
  return names;
}

const sources = readdirSync(WORKFLOWS)
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && f !== 'activityOptions.ts')
  .map((f) => ({ file: `workflows/${f}`, text: readFileSync(path.join(WORKFLOWS, f), 'utf8') }));
const sharedUnlimited = unlimitedProfiles(readFileSync(path.join(WORKFLOWS, 'activityOptions.ts'), 'utf8'));

/** Every wait in the workflows' code: its file, line (1-based) and the text around it. */
function waitsInCode(): { file: string; line: number; text: string; around: string }[] {
  const waits: { file: string; line: number; text: string; around: string }[] = [];
  for (const { file, text } of sources) {
    const lines = text.split('\n');
    const own = unlimitedProfiles(text);
    const profiles = [...sharedUnlimited, ...own];
    const profile = profiles.length ? new RegExp(`\\b(${profiles.join('|')})\\b`) : null;
    // The bodies of profile definitions: their uses are the waits.
    const inProfile = new Set<number>();
    for (const m of text.matchAll(/const \w+: ActivityOptions = \{[\s\S]*?\n\};/g)) {
      const first = text.slice(0, m.index).split('\n').length - 1;
      m[0].split('\n').forEach((_, k) => inProfile.add(first + k));
    }
    lines.forEach((line, i) => {
      if (inProfile.has(i) || /^\s*(import|\*|\/\/|\/\*\*)/.test(line) || /^\s+\w+,$/.test(line)) return;
      const isWait =
        (/\bcondition\(/.test(line) && !/condition\(allHandlersFinished\)/.test(line)) ||
        /\bsleep\(/.test(line) ||
        /maximumAttempts: (Infinity|Number\.POSITIVE_INFINITY)/.test(line) ||
        (profile !== null && profile.test(line) && !/^const \w+: ActivityOptions/.test(line));
      if (!isWait) return;
      waits.push({ file, line: i + 1, text: line.trim(), around: lines.slice(Math.max(0, i - 8), i + 4).join('\n') });
    });
  }
  return waits;
}

describe('docs/workflows.md: every wait and its deadline', () => {
  const rows = tableRows();

  it('finds the waits it checks (the detection itself works)', () => {
    const waits = waitsInCode();
    expect(sharedUnlimited).toEqual(
      expect.arrayContaining(['graphWriteUntilDone', 'gatewaySettle', 'subscriberDelivery', 'kafkaPublishing']),
    );
    expect(waits.some((w) => w.file === 'workflows/erasure.ts' && /historyWorkflowsClosed/.test(w.around))).toBe(true);
    expect(waits.some((w) => w.file === 'workflows/fraud.ts' && /condition\(decided/.test(w.text))).toBe(true);
    expect(waits.filter((w) => /allHandlersFinished\)/.test(w.text))).toEqual([]);
  });

  it('has a row for every wait in workflows/*.ts', () => {
    const missing = waitsInCode()
      .filter((w) => !rows.some((r) => r.file === w.file && w.around.includes(r.code)))
      .map((w) => `${w.file}:${w.line} ${w.text}`);
    expect(missing, 'waits without a row in docs/workflows.md "Every wait and its deadline"').toEqual([]);
  });

  it('names only code that exists, and says for each row its deadline, what becomes visible and the way out', () => {
    const stale = rows
      .filter((r) => !sources.find((s) => s.file === r.file)?.text.includes(r.code))
      .map((r) => `${r.file}: ${r.code}`);
    expect(stale).toEqual([]);
    for (const r of rows) {
      expect(r.cells, r.code).toHaveLength(6);
      for (const cell of r.cells) expect(cell.length, `${r.file} ${r.code}`).toBeGreaterThan(0);
    }
  });
});
