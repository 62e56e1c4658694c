/** Converts Neo4j values (Integer, temporal types) to plain JSON-friendly JS at the graph's edge. */
import { DateTime, isDate, isDateTime, isInt, type Integer } from 'neo4j-driver';

export type Plain = null | boolean | number | string | Plain[] | { [key: string]: Plain };

export function toPlain(value: unknown): Plain {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'object') return value as boolean | number | string;
  if (isInt(value)) return value.toNumber();
  if (isDateTime(value)) return (value as DateTime<Integer | number>).toStandardDate().toISOString();
  if (isDate(value)) return String(value);
  if (Array.isArray(value)) return value.map(toPlain);
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, toPlain(v)]));
}

/** A JS Date or RFC 3339 string as a Neo4j DateTime parameter. */
export function toDateTime(value: Date | string): DateTime<number> {
  return DateTime.fromStandardDate(typeof value === 'string' ? new Date(value) : value);
}
