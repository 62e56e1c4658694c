/**
 * The layout docs/architecture.md describes, kept true by the code itself:
 *   - every module is named in docs/architecture.md (by its path), so the page is a full map;
 *   - no import circles, type-only imports included: data flows one way;
 *   - each folder imports only from the folders below it (the table here, and the same table in the doc);
 *   - no line of code runs past 120 characters (Prettier's limit, for what it cannot break).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../config/env';
import { CODE_FOLDERS, codeFiles } from './codeFiles';

type Folder = (typeof CODE_FOLDERS)[number];

/**
 * What each folder may import (besides itself and packages). Workflows import activities and
 * graph modules as types only (ESLint enforces that); nothing imports the api or the worker
 * but scripts and tests.
 */
const MAY_IMPORT: Partial<Record<Folder, Folder[]>> = {
  payments: [],
  resolution: [],
  config: ['payments'],
  graph: ['config', 'payments', 'resolution'],
  runtime: ['config', 'graph'],
  clients: ['config', 'graph', 'runtime'],
  temporal: ['config', 'graph', 'payments'],
  activities: ['clients', 'config', 'graph', 'payments', 'runtime', 'temporal'],
  workflows: ['activities', 'graph', 'payments', 'temporal'],
  workers: ['activities', 'clients', 'config', 'graph', 'payments', 'runtime', 'temporal', 'workflows'],
  api: ['clients', 'config', 'graph', 'payments', 'proto', 'runtime', 'temporal', 'workflows'],
  simulators: ['config', 'payments', 'runtime'],
  stack: ['config', 'graph', 'temporal'],
  backup: ['config', 'graph', 'runtime', 'temporal'],
};

const files = codeFiles();
const modules = files.filter((f) => !f.endsWith('.test.ts'));

/** Every relative import (and re-export) of a file, type-only ones included, as repo paths. */
function importsOf(file: string): string[] {
  const source = readFileSync(path.join(repoRoot, file), 'utf8');
  return ts
    .preProcessFile(source, true, true)
    .importedFiles.map((i) => i.fileName)
    .filter((spec) => spec.startsWith('.'))
    .map((spec) => {
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec));
      for (const candidate of [`${target}.ts`, `${target}.tsx`, `${target}/index.ts`, target]) {
        if (files.includes(candidate)) return candidate;
      }
      return target;
    })
    .filter((target) => !target.startsWith('..') && !target.endsWith('.json'));
}

const graph = new Map(files.map((f) => [f, importsOf(f)]));

/** Import circles: the strongly connected components with more than one module (Tarjan). */
function circles(): string[][] {
  let index = 0;
  const stack: string[] = [];
  const meta = new Map<string, { index: number; low: number; onStack: boolean }>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    const m = { index, low: index, onStack: true };
    index += 1;
    meta.set(v, m);
    stack.push(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      const mw = meta.get(w);
      if (!mw) {
        visit(w);
        m.low = Math.min(m.low, meta.get(w)!.low);
      } else if (mw.onStack) m.low = Math.min(m.low, mw.index);
    }
    if (m.low === m.index) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        meta.get(w)!.onStack = false;
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!meta.has(v)) visit(v);
  return found;
}

describe('the layout', () => {
  it('names every module in docs/architecture.md', () => {
    const doc = readFileSync(path.join(repoRoot, 'docs', 'architecture.md'), 'utf8');
    expect(modules.length).toBeGreaterThan(100);
    expect(modules.filter((m) => !doc.includes(`\`${m}\``))).toEqual([]);
  });

  it('has no import circles, type-only imports included', () => {
    expect(circles()).toEqual([]);
  });

  it('imports only downwards: each folder from the folders below it', () => {
    const wrong: string[] = [];
    for (const [file, targets] of graph) {
      const folder = file.split('/')[0] as Folder;
      const allowed = MAY_IMPORT[folder];
      if (!allowed || file.endsWith('.test.ts')) continue;
      for (const target of targets) {
        const to = target.split('/')[0] as Folder;
        if (to !== folder && !allowed.includes(to)) wrong.push(`${file} imports ${target}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('says in docs/architecture.md ("Layers") what each folder may import, as MAY_IMPORT has it', () => {
    const doc = readFileSync(path.join(repoRoot, 'docs', 'architecture.md'), 'utf8');
    const layers = doc.split(/^## /m).find((s) => s.startsWith('Layers')) ?? '';
    const ticks = (cell: string): string[] => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1] as string);
    const rows = layers
      .split('\n')
      .filter((l) => /^\| `\w+\/`/.test(l))
      .map((l) =>
        l
          .slice(1, -1)
          .split('|')
          .map((c) => c.trim()),
      );
    const documented = rows.map(([folder = '', may = '']) => [
      folder.replace(/^`|\/`$/g, ''),
      may === 'nothing' ? [] : ticks(may).sort(),
    ]);
    const inCode = Object.entries(MAY_IMPORT).map(([folder, may]) => [folder, [...may].sort()]);
    expect(documented.length, 'one row per folder').toBe(new Set(documented.map(([f]) => f)).size);
    expect(Object.fromEntries(documented)).toEqual(Object.fromEntries(inCode));
    // The folders without a rule are named too.
    const free = ticks(layers.split('\n\n').find((p) => p.startsWith('The table is `MAY_IMPORT`')) ?? '')
      .filter((t) => t.endsWith('/'))
      .map((t) => t.slice(0, -1));
    expect([...new Set(free)].sort()).toEqual(CODE_FOLDERS.filter((f) => !(f in MAY_IMPORT)).sort());
  });

  it('keeps every line of code within 120 characters', () => {
    const long = files.flatMap((f) =>
      readFileSync(path.join(repoRoot, f), 'utf8')
        .split('\n')
        .flatMap((line, n) => ([...line].length > 120 ? [`${f}:${n + 1}`] : [])),
    );
    expect(long).toEqual([]);
  });
});
