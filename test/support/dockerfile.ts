/**
 * A Dockerfile read as a builder would read it, for the image smoke test (there is no container
 * engine on these machines): its stages, and each stage's instructions with continued lines joined
 * and `${ARG}`s of the global scope resolved. Only what Persona's Dockerfile uses is read (ARG,
 * FROM, RUN, COPY, ENV, WORKDIR, USER, EXPOSE, CMD); anything else is refused, so that the test
 * never passes over an instruction it does not understand.
 */

export interface Instruction {
  op: 'RUN' | 'COPY' | 'ENV' | 'WORKDIR' | 'USER' | 'EXPOSE' | 'CMD';
  /** The text after the keyword, continued lines joined with a space. */
  text: string;
}

export interface Stage {
  /** `AS <name>`, or undefined. */
  name?: string;
  /** The base image, ARGs resolved. */
  from: string;
  instructions: Instruction[];
}

const OPS = new Set(['RUN', 'COPY', 'ENV', 'WORKDIR', 'USER', 'EXPOSE', 'CMD']);

/** The Dockerfile's stages, in order; the last is the image. */
export function readDockerfile(text: string): Stage[] {
  const lines: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    // A comment, also between continued lines (as a builder reads it).
    if (/^\s*#/.test(raw)) continue;
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1).trim() + ' ';
      continue;
    }
    const whole = (pending + line.trim()).trim();
    pending = '';
    if (whole) lines.push(whole);
  }
  if (pending.trim()) throw new Error('the Dockerfile ends in a continued line');
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, op = '', rest = ''] = /^(\w+)\s+([\s\S]*)$/.exec(line) ?? [];
    const keyword = op.toUpperCase();
    if (keyword === 'ARG' && stages.length === 0) {
      const [, key = '', value = ''] = /^(\w+)(?:=(.*))?$/.exec(rest) ?? [];
      args.set(key, value);
    } else if (keyword === 'FROM') {
      const [, image = '', name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest) ?? [];
      const from = image.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a?: string, b?: string) => {
        const value = args.get((a ?? b)!);
        if (value === undefined) throw new Error(`FROM ${image}: no ARG ${a ?? b}`);
        return value;
      });
      stages.push({ name, from, instructions: [] });
    } else if (OPS.has(keyword) && stages.length > 0) {
      stages.at(-1)!.instructions.push({ op: keyword as Instruction['op'], text: rest });
    } else {
      throw new Error(`the image smoke test does not read "${line.slice(0, 60)}"`);
    }
  }
  return stages;
}

/** An instruction's flags (`--from=build`) and its arguments. */
export function flagsAndArgs(text: string): { flags: Map<string, string>; args: string[] } {
  const words = text.split(/\s+/).filter(Boolean);
  const flags = new Map<string, string>();
  while (words[0]?.startsWith('--')) {
    const [key = '', value = ''] = words.shift()!.slice(2).split('=');
    flags.set(key, value);
  }
  return { flags, args: words };
}

/** `ENV A=1 B=2` as pairs (the `key=value` form only). */
export function envOf(text: string): Record<string, string> {
  const pairs = text.split(/\s+/).filter(Boolean);
  return Object.fromEntries(
    pairs.map((p) => {
      const at = p.indexOf('=');
      if (at <= 0) throw new Error(`ENV ${text}: only the key=value form is read`);
      return [p.slice(0, at), p.slice(at + 1).replace(/^"(.*)"$/, '$1')];
    }),
  );
}

/** `CMD ["node", "x.js"]`: the exec form's words (the shell form is refused: no shell in between). */
export function execForm(text: string): string[] {
  const words = JSON.parse(text) as unknown;
  if (!Array.isArray(words) || !words.every((w) => typeof w === 'string'))
    throw new Error(`not the exec form: ${text}`);
  return words;
}
