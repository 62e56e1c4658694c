/**
 * The mutations that prove docs/security.md (test/mutations/), kept applicable: each quotes a line
 * of the table, each edit still finds its text exactly once in today's code, each names a test
 * that exists, and every line of the table has one. Whether each test then fails is what
 * `npm run prove:security` shows (docs/security-proof.md); this only keeps the manifest from rotting.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../config/env';
import { MUTATIONS } from '../test/mutations/index';
import { plain, readThreatTable, threatCell } from '../test/mutations/table';

const cells = readThreatTable().map(threatCell);
const read = (file: string): string =>
  existsSync(path.join(repoRoot, file)) ? readFileSync(path.join(repoRoot, file), 'utf8') : '';
describe('the mutations that prove the threat table (test/mutations/)', () => {
  it('have ids of their own', () => {
    const ids = MUTATIONS.map((m) => m.id);
    expect(ids.filter((id, i) => ids.indexOf(id) !== i)).toEqual([]);
  });

  it('each quote the start of one line of the table', () => {
    const stray = MUTATIONS.filter((m) => cells.filter((c) => c.startsWith(m.threat)).length !== 1);
    expect(stray.map((m) => `${m.id}: ${m.threat}`)).toEqual([]);
  });

  it("each still apply to today's code: every text to edit is found exactly once", () => {
    const stale = MUTATIONS.flatMap((m) =>
      [m, ...(m.also ?? [])]
        .filter((e) => read(e.file).split(e.find).length !== 2)
        .map((e) => `${m.id}: ${e.file}: ${e.find.slice(0, 60)}`),
    );
    expect(stale).toEqual([]);
  });

  it('each name a test file that exists, and a title of a test in it', () => {
    const wrong = MUTATIONS.filter(
      (m) =>
        !existsSync(path.join(repoRoot, m.test)) ||
        (m.title !== undefined && !plain(read(m.test)).includes(plain(m.title.split('…')[0]?.trim() ?? ''))),
    );
    expect(wrong.map((m) => `${m.id}: ${m.test} "${m.title ?? ''}"`)).toEqual([]);
  });

  it('prove every line of the table', () => {
    const unproven = cells.filter((c) => !MUTATIONS.some((m) => c.startsWith(m.threat)));
    expect(unproven.map((c) => c.slice(0, 100))).toEqual([]);
  });
});
