/**
 * Code that fits on a screen: no source function over MAX_FUNCTION_LINES lines, no source file
 * over MAX_FILE_LINES (tests, generated code and scripts aside). What is larger today is listed
 * below with its size, largest first: a listed function or file may shrink but not grow, and one
 * that fits comes off the list (the test says so), so the list only ever gets shorter. A new one
 * over the limit fails, naming itself.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../config/env';
import { codeFiles } from './codeFiles';

const MAX_FUNCTION_LINES = 80;
const MAX_FILE_LINES = 400;

/** Folders of code whose files are not measured: tests and their support, scripts, generated code. */
const NOT_MEASURED = ['proto/', 'scripts/', 'test/'];

/** Files over MAX_FILE_LINES today, with their lines: none may grow; each should be split. */
const LARGE_FILES: Record<string, number> = {};

/** Functions over MAX_FUNCTION_LINES today (`file:name`), with their lines: none may grow. */
const LARGE_FUNCTIONS: Record<string, number> = {};

function lineCount(text: string): number {
  return text.endsWith('\n') ? text.split('\n').length - 1 : text.split('\n').length;
}

/** The name a function goes by: its own, its variable's, its property's or method's, else its line. */
function nameOf(node: ts.FunctionLikeDeclaration, file: ts.SourceFile): string {
  if (node.name && ts.isIdentifier(node.name)) return node.name.text;
  if (node.name) return node.name.getText(file);
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent) && ts.isIdentifier(parent.name)) return parent.name.text;
  if (ts.isPropertyAssignment(parent)) return parent.name.getText(file);
  const line = file.getLineAndCharacterOfPosition(node.getStart(file)).line + 1;
  return `(anonymous, line ${line})`;
}

/** Every function in a file longer than the limit, by name, with its lines. */
function largeFunctions(rel: string, text: string): Record<string, number> {
  const file = ts.createSourceFile(rel, text, ts.ScriptTarget.Latest, true, rel.endsWith('x') ? 4 : 3);
  const found: Record<string, number> = {};
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const fn = node;
      const start = file.getLineAndCharacterOfPosition(fn.getStart(file)).line;
      const end = file.getLineAndCharacterOfPosition(fn.getEnd()).line;
      const lines = end - start + 1;
      if (lines > MAX_FUNCTION_LINES) found[`${rel}:${nameOf(fn, file)}`] = lines;
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

const files = codeFiles().filter(
  (f) => !/\.test\.tsx?$/.test(f) && !NOT_MEASURED.some((folder) => f.startsWith(folder)),
);
const measured = files.map((rel) => {
  const text = readFileSync(path.join(repoRoot, rel), 'utf8');
  return { rel, lines: lineCount(text), functions: largeFunctions(rel, text) };
});

/** What is over the limit against what the list allows: new ones, grown ones, and ones that now fit. */
function ratchet(actual: Record<string, number>, allowed: Record<string, number>, limit: number): string[] {
  const problems: string[] = [];
  for (const [what, lines] of Object.entries(actual)) {
    const was = allowed[what];
    if (was === undefined) problems.push(`${what}: ${lines} lines, over ${limit}: split it`);
    else if (lines > was) problems.push(`${what}: grew from ${was} to ${lines} lines (over ${limit}): split it`);
  }
  for (const [what, was] of Object.entries(allowed))
    if (actual[what] === undefined) problems.push(`${what}: fits now (was ${was}): take it off the list`);
  return problems;
}

describe('code that fits on a screen', () => {
  it(`has no source file over ${MAX_FILE_LINES} lines but those listed, none grown`, () => {
    const actual = Object.fromEntries(measured.filter((f) => f.lines > MAX_FILE_LINES).map((f) => [f.rel, f.lines]));
    expect(ratchet(actual, LARGE_FILES, MAX_FILE_LINES)).toEqual([]);
  });

  it(`has no source function over ${MAX_FUNCTION_LINES} lines but those listed, none grown`, () => {
    const actual = Object.assign({}, ...measured.map((f) => f.functions)) as Record<string, number>;
    expect(ratchet(actual, LARGE_FUNCTIONS, MAX_FUNCTION_LINES)).toEqual([]);
  });
});
