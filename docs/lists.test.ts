/**
 * Lists in the docs that the code also holds, kept equal to the code's own source of truth, so a
 * change that makes one false fails CI:
 *   - the event types (docs/architecture.md, "Event types"; docs/events.md's published-fields table;
 *     docs/events.schema.json) are `EVENT_TYPES` of graph/eventSchemas.ts, and each of them is written
 *     somewhere: named in a source that is not a list of the types or a reader of them;
 *   - every workflow of workflows/index.ts has its failure table in docs/workflows.md, whose rows
 *     name exactly the activities the workflow calls (read from its source and the workflow modules
 *     it imports: the calls on the proxies `activitiesWithSummaries` makes, named by the summaries
 *     they are given);
 *   - the business metrics with every label value (docs/workflows.md's table, docs/runbook.md's
 *     "Metrics") are `BUSINESS_METRICS` of temporal/metrics.ts;
 *   - the patches in force (docs/workflows.md) are the ids of the `patched()` and `deprecatePatch()`
 *     calls in workflows/;
 *   - the temporal/ modules docs/architecture.md says do I/O are those that do, and no workflow
 *     imports one of them.
 * The layering table of docs/architecture.md is checked in docs/architecture.test.ts.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { EVENT_TYPES } from '../graph/eventSchemas';
import { codeFiles } from './codeFiles';
import { BUSINESS_METRICS, exportedName, type BusinessMetric } from '../temporal/metrics';

const root = fileURLToPath(new URL('..', import.meta.url));
const read = (rel: string): string => readFileSync(path.join(root, rel), 'utf8');
const sorted = (items: Iterable<string>): string[] => [...items].sort();

/** A section: from the heading line that starts with `heading` to the next heading of its level or above. */
function section(text: string, heading: string): string {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.startsWith(heading));
  if (start < 0) throw new Error(`no heading "${heading}"`);
  const level = /^#+/.exec(heading)?.[0].length ?? 0;
  const end = lines.findIndex((l, i) => i > start && /^#+ /.test(l) && (/^#+/.exec(l)?.[0].length ?? 0) <= level);
  return lines.slice(start, end < 0 ? undefined : end).join('\n');
}

interface Table {
  header: string[];
  rows: string[][];
}

/** Every table in `text`: its header and its rows, cells trimmed (`\|` inside a cell is no separator). */
function tables(text: string): Table[] {
  const found: Table[] = [];
  const cells = (line: string): string[] =>
    line
      .trim()
      .replace(/^\||\|$/g, '')
      .split(/(?<!\\)\|/)
      .map((c) => c.trim());
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]?.startsWith('|') || !/^\|\s*:?-+/.test(lines[i + 1] ?? '')) continue;
    const table: Table = { header: cells(lines[i] as string), rows: [] };
    for (i += 2; i < lines.length && lines[i]?.startsWith('|'); i++) table.rows.push(cells(lines[i] as string));
    found.push(table);
  }
  return found;
}

/** The tables of `text` whose header is exactly `header`. */
const tablesWith = (text: string, header: string[]): Table[] =>
  tables(text).filter((t) => JSON.stringify(t.header) === JSON.stringify(header));

/** What a cell holds in backticks, in order. */
const ticks = (cell: string): string[] => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1] as string);

const architecture = read('docs/architecture.md');
const workflowsDoc = read('docs/workflows.md');

describe('event types', () => {
  it('docs/architecture.md lists every type of graph/eventSchemas.ts, and no other', () => {
    const listed = section(architecture, '### Event types')
      .split(/\n\n/)
      .filter((p) => p.startsWith('`'))
      .flatMap((p) => ticks(p));
    expect(listed.length, 'one list paragraph, each type once').toBe(new Set(listed).size);
    expect(sorted(listed)).toEqual(sorted(EVENT_TYPES));
  });

  it('docs/events.md has a row of published fields for every type, and no other', () => {
    const [table, ...more] = tablesWith(read('docs/events.md'), ['event type', 'payload fields published']);
    expect(more).toEqual([]);
    const listed = (table?.rows ?? []).map((r) => ticks(r[0] ?? '')[0] ?? r[0]);
    expect(listed.length).toBe(new Set(listed).size);
    expect(sorted(listed as string[])).toEqual(sorted(EVENT_TYPES));
  });

  it('docs/events.schema.json has a payload schema for every type, and no other', () => {
    const schema = JSON.parse(read('docs/events.schema.json')) as { properties: Record<string, unknown> };
    expect(sorted(Object.keys(schema.properties))).toEqual(sorted(EVENT_TYPES));
  });

  it('has a producer for every type: a type nothing writes is a contract with nothing behind it', () => {
    // The list of the types, and the readers that name every type (labels, what a snapshot ignores).
    const notProducers = new Set(['graph/eventSchemas.ts', 'api/readCache.ts', 'api/services/events.ts']);
    const sources = codeFiles()
      .filter((f) => !/\.test\.tsx?$/.test(f) && !f.startsWith('test/') && !notProducers.has(f))
      .map((f) => read(f));
    const unwritten = EVENT_TYPES.filter((type) => !sources.some((text) => text.includes(`'${type}'`)));
    expect(unwritten).toEqual([]);
  });
});

// ---- workflows and the activities they call ---------------------------------------------------

const WORKFLOW_FILES = readdirSync(path.join(root, 'workflows')).filter(
  (f) => f.endsWith('.ts') && !f.endsWith('.test.ts'),
);
const parse = (file: string, text = read(file)): ts.SourceFile =>
  ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);

/** Every call in `node`'s tree. */
function calls(node: ts.Node): ts.CallExpression[] {
  const found: ts.CallExpression[] = [];
  const visit = (n: ts.Node): void => {
    if (ts.isCallExpression(n)) found.push(n);
    ts.forEachChild(n, visit);
  };
  visit(node);
  return found;
}

const calleeName = (c: ts.CallExpression): string | undefined =>
  ts.isIdentifier(c.expression)
    ? c.expression.text
    : ts.isPropertyAccessExpression(c.expression)
      ? c.expression.name.text
      : undefined;

function unwrap(e: ts.Expression): ts.Expression {
  let x = e;
  while (ts.isAsExpression(x) || ts.isSatisfiesExpression(x) || ts.isParenthesizedExpression(x)) x = x.expression;
  return x;
}

/** `const name = <initializer>` of a file, by name. */
function constants(sf: ts.SourceFile): Map<string, ts.Expression> {
  const found = new Map<string, ts.Expression>();
  const visit = (n: ts.Node): void => {
    if (ts.isVariableDeclaration(n) && ts.isIdentifier(n.name) && n.initializer) found.set(n.name.text, n.initializer);
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return found;
}

const PROXIES = new Set(['activitiesWithSummaries', 'localActivitiesWithSummaries']);

/**
 * The activity names a file's proxies cover: the keys of the summaries each `activitiesWithSummaries`
 * (or `localActivitiesWithSummaries`) call is given (the type demands one per activity of its group).
 */
function proxiedActivities(sf: ts.SourceFile): string[] {
  const consts = constants(sf);
  return calls(sf)
    .filter((c) => PROXIES.has(calleeName(c) ?? ''))
    .flatMap((c) => {
      let summaries = c.arguments[1] && unwrap(c.arguments[1]);
      if (summaries && ts.isIdentifier(summaries)) {
        const init = consts.get(summaries.text);
        summaries = init && unwrap(init);
      }
      if (!summaries || !ts.isObjectLiteralExpression(summaries))
        throw new Error(`${sf.fileName}: the summaries of an activity proxy are not an object literal in the file`);
      return summaries.properties.map((p) => {
        if (!p.name || !(ts.isIdentifier(p.name) || ts.isStringLiteral(p.name)))
          throw new Error(`${sf.fileName}: a summary without a plain name`);
        return p.name.text;
      });
    });
}

const ACTIVITY_NAMES = new Set(WORKFLOW_FILES.flatMap((f) => proxiedActivities(parse(`workflows/${f}`))));

/**
 * The activities a workflow's file calls: each activity name read off a proxy (`graph.beginRecovery`,
 * `notifications.notifyCustomer`, `this.gateway.chargePaymentMethod`) or bound from one
 * (`const { pruneEvents } = activitiesWithSummaries(…)`).
 */
function activitiesCalled(sf: ts.SourceFile): string[] {
  const used = new Set<string>();
  const visit = (n: ts.Node): void => {
    if (ts.isPropertyAccessExpression(n) && ACTIVITY_NAMES.has(n.name.text)) used.add(n.name.text);
    if (ts.isBindingElement(n)) {
      const name = (n.propertyName ?? n.name).getText(sf);
      if (ACTIVITY_NAMES.has(name)) used.add(name);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return sorted(used);
}

/** A workflow's file and the workflow modules it imports, directly or through others (its steps, its state). */
function workflowModules(file: string): string[] {
  const found = new Set<string>();
  const visit = (f: string): void => {
    if (found.has(f) || !existsSync(path.join(root, f))) return;
    found.add(f);
    for (const spec of ts.preProcessFile(read(f), true, true).importedFiles.map((i) => i.fileName))
      if (spec.startsWith('./')) visit(`workflows/${spec.slice(2)}.ts`);
  };
  visit(file);
  return sorted(found);
}

/** The activities a workflow calls: in its file or in a workflow module it imports. */
const activitiesOf = (file: string): string[] =>
  sorted(new Set(workflowModules(file).flatMap((f) => activitiesCalled(parse(f)))));

/** Every workflow of workflows/index.ts and the file it is written in. */
const WORKFLOWS = [...read('workflows/index.ts').matchAll(/export \{ (\w+) \} from '\.\/(\w+)';/g)].map((m) => ({
  name: m[1] as string,
  file: `workflows/${m[2] as string}.ts`,
}));

const FAILURE_TABLE = ['activity', 'fails for good', 'ops see'];
/** A failure table's first cell: one or more activities, then what case of them the row is about. */
const ACTIVITY_CELL = /^`\w+`(?:, `\w+`)*(?: \(.+\))?$/;

describe('docs/workflows.md: a failure table for every workflow', () => {
  it('reads the workflows and the activities they call (the detection itself works)', () => {
    expect(WORKFLOWS.length).toBeGreaterThanOrEqual(12);
    const of = (name: string): string[] => {
      const w = WORKFLOWS.find((x) => x.name === name);
      return w ? activitiesOf(w.file) : [];
    };
    // A local activity, a proxy made in a class, one imported from workflows/notifications.ts, a destructured one.
    expect(of('onboardingWorkflow')).toEqual(['onboardCustomer', 'requestBehavioralProfile']);
    expect(of('paymentRecoveryWorkflow')).toEqual(expect.arrayContaining(['chargePaymentMethod', 'notifyCustomer']));
    expect(of('kafkaPublisherWorkflow')).toEqual(['publishEvents']);
    // A workflow written in several modules is read whole: the recovery's steps are modules it imports.
    expect(workflowModules('workflows/recovery.ts')).toEqual(
      expect.arrayContaining(['workflows/recovery.ts', 'workflows/recoveryAttention.ts', 'workflows/recoveryState.ts']),
    );
    // Every activity proxy is made with its summaries: no workflow calls `proxyActivities` itself.
    const bare = WORKFLOW_FILES.filter((f) => f !== 'activityOptions.ts').filter((f) =>
      calls(parse(`workflows/${f}`)).some((c) => /^proxy(Local)?Activities$/.test(calleeName(c) ?? '')),
    );
    expect(bare).toEqual([]);
  });

  for (const { name, file } of WORKFLOWS) {
    it(`${name}: its rows name exactly the activities ${file} calls, itself or through its modules`, () => {
      const sections = workflowsDoc.split(/^(?=## )/m).filter((s) => s.split('\n')[0]?.endsWith(`— \`${name}\``));
      expect(sections, `one section "## … — \`${name}\`"`).toHaveLength(1);
      const found = tablesWith(sections[0] as string, FAILURE_TABLE);
      expect(found, `one table | ${FAILURE_TABLE.join(' | ')} | in its section`).toHaveLength(1);
      const rows = found[0]?.rows ?? [];
      for (const row of rows) {
        expect(row[0], 'the first cell names its activities in backticks').toMatch(ACTIVITY_CELL);
        expect(row, String(row[0])).toHaveLength(3);
        for (const cell of row) expect(cell.length, String(row[0])).toBeGreaterThan(0);
      }
      const named = new Set(rows.flatMap((r) => ticks((r[0] ?? '').split(' (')[0] ?? '')));
      expect(sorted(named)).toEqual(activitiesOf(file));
    });
  }
});

// ---- metrics -------------------------------------------------------------------------------------

const METRICS = Object.values(BUSINESS_METRICS) as BusinessMetric[];

describe('the business metrics and their label values', () => {
  it('docs/workflows.md lists every metric of temporal/metrics.ts with every value of its labels', () => {
    const [table, ...more] = tablesWith(workflowsDoc, ['workflow', 'metric', 'labels, with every value']);
    expect(more).toEqual([]);
    const documented = (table?.rows ?? []).map(([workflow = '', metric = '', labels = '']) => ({
      workflowType: ticks(workflow)[0] ?? workflow,
      name: ticks(metric)[0] ?? metric,
      values: /^none\b/.test(labels)
        ? {}
        : Object.fromEntries(
            labels.split('; ').map((part) => {
              const [label, ...values] = ticks(part);
              return [label, sorted(values)];
            }),
          ),
    }));
    const inCode = METRICS.map((m) => ({
      workflowType: m.workflowType,
      name: exportedName(m),
      values: Object.fromEntries(Object.entries(m.values).map(([label, values]) => [label, sorted(values)])),
    }));
    const byName = (a: { name: string }, b: { name: string }): number => a.name.localeCompare(b.name);
    expect(documented.sort(byName)).toEqual(inCode.sort(byName));
  });

  it("docs/runbook.md's metrics table has every metric, and any values it lists are all of them", () => {
    const metricsSection = section(read('docs/runbook.md'), '## Metrics');
    const rows = tables(metricsSection).flatMap((t) => (t.header[0] === 'metric' ? t.rows : []));
    for (const m of METRICS) {
      const labels = Object.keys(m.values);
      const cell = `\`${exportedName(m)}${labels.length ? `{${labels.join(',')}}` : ''}\``;
      const row = rows.filter((r) => r[0] === cell);
      expect(row, `one row ${cell}`).toHaveLength(1);
      if (labels.length === 0) continue;
      // A value is a lower-case word in backticks; the label's own name and settings are not.
      const listed = ticks(row[0]?.[2] ?? '').filter((t) => /^[a-z0-9_]+$/.test(t) && !labels.includes(t));
      if (listed.length > 0) expect(sorted(listed), cell).toEqual(sorted(Object.values(m.values).flat()));
    }
  });
});

// ---- patches ---------------------------------------------------------------------------------------

const PATCH_CALLS = new Set(['patched', 'deprecatePatch']);

/** The patch ids of a file: the argument of every `patched(…)` / `deprecatePatch(…)`, a string or a constant. */
function patchIds(sf: ts.SourceFile, known: Map<string, string>): string[] {
  const consts = constants(sf);
  return calls(sf)
    .filter((c) => PATCH_CALLS.has(calleeName(c) ?? ''))
    .map((c) => {
      const arg = c.arguments[0] && unwrap(c.arguments[0]);
      if (arg && ts.isStringLiteralLike(arg)) return arg.text;
      if (arg && ts.isIdentifier(arg)) {
        const init = consts.get(arg.text);
        const local = init && unwrap(init);
        if (local && ts.isStringLiteralLike(local)) return local.text;
        const shared = known.get(arg.text);
        if (shared !== undefined) return shared;
      }
      throw new Error(`${sf.fileName}: a patch id that is neither a string nor a string constant: ${c.getText(sf)}`);
    });
}

/** String constants of temporal/ and workflows/, where a patch id may be held. */
function stringConstants(): Map<string, string> {
  const known = new Map<string, string>();
  for (const folder of ['temporal', 'workflows'])
    for (const f of readdirSync(path.join(root, folder)).filter((x) => x.endsWith('.ts') && !x.endsWith('.test.ts')))
      for (const [name, init] of constants(parse(`${folder}/${f}`))) {
        const value = unwrap(init);
        if (ts.isStringLiteralLike(value)) known.set(name, value.text);
      }
  return known;
}

describe('docs/workflows.md: the patches in force', () => {
  it('finds patch ids in code (the detection itself works)', () => {
    const sample = parse(
      'sample.ts',
      "const NEW_PATH = 'recovery-new-path';\n" +
        "if (patched(NEW_PATH)) run(); else old();\ndeprecatePatch('onboarding-old');\n" +
        'if (wf.patched(SHARED)) run();\n',
    );
    expect(sorted(patchIds(sample, new Map([['SHARED', 'merge-shared']])))).toEqual([
      'merge-shared',
      'onboarding-old',
      'recovery-new-path',
    ]);
  });

  it('lists every patch id of workflows/, and no other', () => {
    const known = stringConstants();
    const inCode = WORKFLOW_FILES.flatMap((f) => patchIds(parse(`workflows/${f}`), known));
    const lines = section(workflowsDoc, '## The baseline').split('\n');
    const start = lines.findIndex((l) => l.startsWith('**Patches in force**'));
    expect(start, 'a paragraph "**Patches in force**" in "The baseline"').toBeGreaterThanOrEqual(0);
    const list = lines.slice(start).findIndex((l) => l.startsWith('- '));
    const bullets: string[] = [];
    for (let i = start + list; list >= 0 && lines[i]?.startsWith('- '); i++) bullets.push(lines[i] as string);
    expect(bullets.length, 'a bullet list after it').toBeGreaterThan(0);
    const documented =
      bullets.length === 1 && bullets[0] === '- none'
        ? []
        : bullets.map((b) => {
            const id = /^- `([\w.-]+)`/.exec(b)?.[1];
            if (!id) throw new Error(`a patch bullet without its id in backticks first: ${b}`);
            return id;
          });
    expect(sorted(documented)).toEqual(sorted(new Set(inCode)));
  });
});

// ---- temporal/ and I/O -------------------------------------------------------------------------------

/** A module does I/O when it awaits, reads a file, or imports a network or database client. */
const DOES_IO = /\bawait\b|\.then\(|readFileSync|from 'node:(fs|net|http|https|dns|child_process)'|from 'neo4j-driver'/;

/** The modules a file imports for their values (a type-only import is erased: it runs nothing). */
function valueImportsOf(file: string): string[] {
  const sf = parse(file);
  return sf.statements.flatMap((st) => {
    let spec: ts.Expression | undefined;
    if (ts.isImportDeclaration(st)) {
      const clause = st.importClause;
      const named = clause?.namedBindings;
      const allTypes = named !== undefined && ts.isNamedImports(named) && named.elements.every((e) => e.isTypeOnly);
      const typesOnly = clause !== undefined && (clause.isTypeOnly || (clause.name === undefined && allTypes));
      if (!typesOnly) spec = st.moduleSpecifier;
    } else if (ts.isExportDeclaration(st) && !st.isTypeOnly) spec = st.moduleSpecifier;
    if (!spec || !ts.isStringLiteral(spec) || !spec.text.startsWith('.')) return [];
    const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec.text));
    const candidates = [`${target}.ts`, `${target}.tsx`, `${target}/index.ts`];
    return candidates.filter((f) => existsSync(path.join(root, f))).slice(0, 1);
  });
}

describe("docs/architecture.md: temporal/'s modules that do I/O", () => {
  const paragraph =
    section(architecture, "### Temporal's shared contract")
      .split(/\n\n/)
      .find((p) => p.startsWith('Imported by the api')) ?? '';
  const listed = ticks(paragraph).filter((t) => /^temporal\/\w+\.ts$/.test(t));

  it('names every module of temporal/ that does I/O, and no other', () => {
    const modules = readdirSync(path.join(root, 'temporal'))
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
      .map((f) => `temporal/${f}`);
    expect(sorted(listed)).toEqual(sorted(modules.filter((m) => DOES_IO.test(read(m)))));
  });

  it('none of them is imported by a workflow, directly or through other modules (type-only imports aside)', () => {
    const reached = new Set<string>();
    const stack = WORKFLOW_FILES.map((f) => `workflows/${f}`);
    while (stack.length > 0) {
      const file = stack.pop() as string;
      if (reached.has(file)) continue;
      reached.add(file);
      stack.push(...valueImportsOf(file));
    }
    expect(listed.length).toBeGreaterThan(0);
    expect(listed.filter((m) => reached.has(m))).toEqual([]);
  });
});
