/**
 * The threat table in docs/security.md, kept honest: every line names what proves it — a test
 * file that exists (or an `npm run` benchmark) — and every test it quotes by title is a test of
 * that file (a title may be cut short with "…"). A renamed or deleted test breaks this, not the
 * table's word.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../config/env';
import { plain, readThreatTable } from '../test/mutations/table';

const rows = readThreatTable();

describe('the threat table (docs/security.md)', () => {
  it('has its lines', () => {
    expect(rows.length).toBeGreaterThan(100);
  });

  it('names on every line a test file that exists, or a benchmark', () => {
    const unproven = rows.filter((cells) => {
      const proof = cells[cells.length - 1] ?? '';
      return !/`[\w./-]+\.test\.ts`/.test(proof) && !/npm run /.test(proof);
    });
    expect(unproven.map((cells) => cells.slice(0, 2).join(' | ').slice(0, 120))).toEqual([]);
    const missing = rows.flatMap((cells) =>
      [...(cells[cells.length - 1] ?? '').matchAll(/`([\w./-]+\.test\.ts)`/g)]
        .map((m) => m[1] as string)
        .filter((file) => !existsSync(path.join(repoRoot, file))),
    );
    expect(missing).toEqual([]);
  });

  it('quotes only titles of tests that are in the file it names', () => {
    const wrong: string[] = [];
    for (const cells of rows) {
      const proof = cells[cells.length - 1] ?? '';
      for (const m of proof.matchAll(/`([\w./-]+\.test\.ts)`\s*\(([^`]*?)\)(?=,\s*`|\s*$|\s*\|)/g)) {
        const file = m[1] as string;
        if (!existsSync(path.join(repoRoot, file))) continue;
        const source = plain(readFileSync(path.join(repoRoot, file), 'utf8'));
        for (const q of (m[2] as string).matchAll(/"([^"]+)"/g)) {
          const title =
            plain(q[1] as string)
              .split('…')[0]
              ?.trim()
              .replace(/[:,]$/, '') ?? '';
          if (title.length > 0 && !source.includes(title)) wrong.push(`${file}: "${q[1] as string}"`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });
});
