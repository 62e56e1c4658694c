/**
 * A defence taken out on purpose: one exact edit to the code that stops a threat of
 * docs/security.md, and the test that must then fail. `npm run prove:security` makes each edit in
 * a scratch copy of the repository, runs the test there and reports whether it failed
 * (docs/security-proof.md); `docs/security-proof.test.ts` checks that every edit still applies to
 * today's code and that every line of the threat table has one.
 */
export interface Mutation {
  /** Short and unique: `npm run prove:security -- --only <id>`. */
  id: string;
  /** The line of the threat table this proves: the start of its threat (or action) cell, verbatim. */
  threat: string;
  /** What the edit takes out, in words. */
  removes: string;
  /** The file edited, from the repository's root. */
  file: string;
  /** Text that occurs exactly once in `file` … */
  find: string;
  /** … and what it becomes. */
  replace: string;
  /** More edits made with this one, when the defence is in more than one place (defence in depth). */
  also?: Edit[];
  /** The test file that must fail, from the repository's root. */
  test: string;
  /** The start of the test's title (vitest's -t); every test of the file when absent. */
  title?: string;
}

/** One more exact edit: `find` occurs exactly once in `file`. */
export interface Edit {
  file: string;
  find: string;
  replace: string;
}

/** Builds a list of mutations with less repetition: one test file for all of them. */
export const inFile = (test: string, list: Omit<Mutation, 'test'>[]): Mutation[] => list.map((m) => ({ ...m, test }));
