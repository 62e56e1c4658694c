/**
 * The schema version moves with the schema: changing a rule or a data migration without bumping
 * SCHEMA_VERSION would let a process of the new release serve a graph the old migration made.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DATA_MIGRATIONS, SCHEMA_VERSION } from './schema';
import { RETIRED_SCHEMA, SCHEMA } from './schemaRules';

/** What the migration applies, as one digest: every rule's statement and every data migration's. */
function fingerprint(): string {
  const parts = [
    ...SCHEMA.map((r) => `schema ${r.cypher}`),
    ...RETIRED_SCHEMA.map((r) => `retired ${r.cypher}`),
    ...DATA_MIGRATIONS.map((m) => `data ${m.name} ${m.cypher}`),
  ];
  return createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 16);
}

describe('graph/schema.ts', () => {
  it('bumps SCHEMA_VERSION with every change to what the migration applies', () => {
    // Changed SCHEMA, RETIRED_SCHEMA or DATA_MIGRATIONS? Bump SCHEMA_VERSION and record here the
    // fingerprint this test prints, with the version.
    expect({ version: SCHEMA_VERSION, fingerprint: fingerprint() }).toEqual({
      version: 6,
      fingerprint: 'ef4f426513929d94',
    });
  });

  it('names every rule once', () => {
    expect(new Set(SCHEMA.map((r) => r.name)).size).toBe(SCHEMA.length);
  });
});
