/**
 * The repo's code as the docs tests read it: its folders of code, and every .ts or .tsx file in
 * them (generated code, replay histories and the stack's install aside), as repo paths.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../config/env';

/** Folders of code; every .ts or .tsx file in them (but tests and generated code) is a module. */
export const CODE_FOLDERS = [
  'activities',
  'api',
  'backup',
  'clients',
  'config',
  'graph',
  'ops',
  'payments',
  'proto',
  'resolution',
  'runtime',
  'scripts',
  'simulators',
  'stack',
  'temporal',
  'test',
  'workers',
  'workflows',
] as const;
const SKIP = new Set(['node_modules', '.stack', 'generated', '__histories__']);

function walk(dir: string): string[] {
  return readdirSync(path.join(repoRoot, dir), { withFileTypes: true }).flatMap((entry) => {
    const rel = path.posix.join(dir, entry.name);
    if (entry.isDirectory()) return SKIP.has(entry.name) ? [] : walk(rel);
    return /\.tsx?$/.test(entry.name) ? [rel] : [];
  });
}

/** Every code file (tests included), sorted. */
export function codeFiles(): string[] {
  return CODE_FOLDERS.flatMap((folder) => walk(folder)).sort();
}
