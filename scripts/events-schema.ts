/**
 * Writes docs/events.schema.json — the JSON Schema of every event type's payload — from
 * graph/eventSchemas.ts:   npm run events:schema
 * A unit test fails when the committed file is out of date.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../config/env';
import { z } from 'zod';
import { EVENT_PAYLOADS } from '../graph/eventSchemas';

/** The JSON Schema of every payload, by event type (docs/events.schema.json). */
export function eventPayloadJsonSchema(): Record<string, unknown> {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'Persona event payloads, by event type',
    description:
      'Every event is {id, type, customer_id, occurred_at, customer_seq, epoch, payload} (customer_seq: the ' +
      "event's place in its customer's gap-free sequence within the log's epoch, null without a customer; " +
      "epoch: 0 until the graph is first restored from a backup, then the restore's time in seconds); this " +
      'maps each type ' +
      'to its payload. A device-level event (DeviceTrustScoreUpdated) has customer_id null, device_id set, ' +
      "customer_seq null and device_seq (its place in its device's gap-free sequence; 0 before devices were " +
      'numbered). ' +
      'A type never changes meaning; payloads may gain fields, never lose or retype one. ' +
      'Generated from graph/eventSchemas.ts by npm run events:schema.',
    type: 'object',
    properties: Object.fromEntries(
      Object.entries(EVENT_PAYLOADS).map(([type, schema]) => [
        type,
        z.toJSONSchema(schema, { target: 'draft-2020-12' }),
      ]),
    ),
  };
}

export const EVENTS_SCHEMA_FILE = path.join(repoRoot, 'docs', 'events.schema.json');

export function renderEventsSchema(): string {
  return `${JSON.stringify(eventPayloadJsonSchema(), null, 2)}\n`;
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(repoRoot, 'scripts', 'events-schema.ts')) {
  writeFileSync(EVENTS_SCHEMA_FILE, renderEventsSchema());
  console.log(`wrote ${path.relative(repoRoot, EVENTS_SCHEMA_FILE)}`);
}
