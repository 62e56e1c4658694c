/**
 * The rows of docs/security.md's tables, each as its cells (the first is the asset or the
 * action, the second the threat or the bound, the last what proves it).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../../config/env';

export const readThreatTable = (root = repoRoot): string[][] =>
  readFileSync(path.join(root, 'docs', 'security.md'), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('|') && !/^\|\s*-/.test(l))
    .map((l) =>
      l
        .replace(/^\||\|\s*$/g, '')
        .split(' | ')
        .map((c) => c.trim()),
    )
    .filter((cells) => cells.length >= 4 && !['asset', 'action'].includes(cells[0] ?? ''));

/** The cell a mutation's `threat` quotes: the threat, or for a bulk action the action itself. */
export const threatCell = (cells: string[]): string => (cells.length === 5 ? cells[0] : cells[1]) ?? '';

/** Apostrophes and quotes as typed or as typeset; a title split over `'…' +` lines joined again. */
export const plain = (text: string): string =>
  text
    .replace(/['"`]\s*\+\s*\n\s*['"`]/g, '')
    .replace(/[\u2018\u2019]/g, "'")
    .replace(/\\'/g, "'");
