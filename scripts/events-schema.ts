/**
 * Writes docs/events.schema.json — the JSON Schema of every event type's payload — from
 * graph/eventSchemas.ts:   npm run events:schema
 * A unit test fails when the committed file is out of date.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../config/env';
import { eventPayloadJsonSchema } from '../graph/eventSchemas';

export const EVENTS_SCHEMA_FILE = path.join(repoRoot, 'docs', 'events.schema.json');

export function renderEventsSchema(): string {
  return `${JSON.stringify(eventPayloadJsonSchema(), null, 2)}\n`;
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(repoRoot, 'scripts', 'events-schema.ts')) {
  writeFileSync(EVENTS_SCHEMA_FILE, renderEventsSchema());
  console.log(`wrote ${path.relative(repoRoot, EVENTS_SCHEMA_FILE)}`);
}
