/**
 * The gateway simulator's state, as one typed object the routes are given: its records (charges,
 * revoked tokens, updater lookups, how far its clock was moved on) kept in a JSON-lines file and
 * indexed in memory, its clock, and the faults in force. Records are appended to the file, so a
 * restart loses nothing (the keys' expiry, when a charge settles and when it is listed included).
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { RuleTable } from '../../payments/networkRules';

export interface ChargeRecord {
  id: string;
  idempotency_key: string;
  customer_id: string;
  amount: number;
  currency: string;
  /**
   * What the charge came to. Answered `processing` (with no decline yet) while a charge that
   * settles later has not settled; the file holds its final status.
   */
  status: 'succeeded' | 'declined' | 'processing';
  decline_code: string | null;
  created_at: string;
  /** What the charge is for (Persona sends the payment id); null when the request named nothing. */
  reference: string | null;
  /** Absent on records written before the simulator spoke like a processor. */
  network?: string;
  fingerprint?: string;
  initiator?: 'cit' | 'mit';
  network_response_code?: string | null;
  category?: number | null;
  advice_code?: string | null;
}

export interface SimulatorOptions {
  /** The simulator's clock (ms since epoch); default Date.now. `PUT /_sim/clock` adds an offset to it. */
  now?: () => number;
  /** How long the processor remembers an idempotency key, measured from the key's first request (default 24 h). */
  keyTtlMs?: number;
  /**
   * In-process fault injection (randomized tests): asked once per charge request that would make a
   * new charge or replay one; null = no fault.
   */
  fault?: (req: ChargeAbout) => ChargeFault | null;
  /**
   * How long after its commit a new charge appears in `GET /v1/charges` (ms, 0 to MAX_DELAY_MS),
   * asked once per new charge when `PUT /_sim/faults` sets no `listing_lag_ms`; default 0.
   */
  listingLag?: (req: ChargeAbout) => number;
}

/** What the in-process hooks are told of a charge request. */
export interface ChargeAbout {
  idempotency_key: string;
  reference: string | null;
  customer_id: string;
}

/** The longest a charge may take to settle, or to appear in listings: a day. */
export const MAX_DELAY_MS = 24 * 60 * 60 * 1000;

export type ChargeFault =
  | { kind: 'fail_before' } // 503 before anything is committed
  | { kind: 'fail_after_commit' } // the charge is committed (recorded), then 503 is answered
  | { kind: 'lose_answer' } // the charge is committed, then the connection is dropped with no answer
  /** The request is held this long before it is processed (its key is in flight meanwhile). */
  | { kind: 'latency'; ms: number }
  /**
   * A new charge is committed and answered `processing`; it settles to its outcome this long (1 ms
   * to MAX_DELAY_MS) after its commit, by the simulator's clock. A replay is answered as it stands.
   */
  | { kind: 'processing'; ms: number };

/** One question to the account updater, as recorded. */
export interface UpdaterLookup {
  id: string;
  fingerprint: string;
  status: 'no_change' | 'updated' | 'replaced' | 'closed';
  at: string;
}

export interface StoredAnswer {
  record: ChargeRecord;
  http_status: 200 | 402;
  /**
   * When the request that made the charge arrived (the key's first request, by the simulator's
   * clock): the key is forgotten `keyTtlMs` later. Absent on older lines: the record's created_at.
   */
  key_first_at?: string;
  /** When a charge that settles later settles (the simulator's clock); absent when it settled at once. */
  settles_at?: string;
  /** When the charge appears in listings (the simulator's clock); absent when at once. */
  listed_at?: string;
}

/**
 * A line of the records file: a charge's first answer, a token the issuer revoked, an updater
 * lookup, how far `PUT /_sim/clock` has moved the clock on.
 */
export type StoredLine =
  StoredAnswer | { revoked_token: string } | { lookup: UpdaterLookup } | { clock_offset_ms: number };

/**
 * The faults set through `PUT /_sim/faults`: latency for every charge request, counters for the
 * next ones, how long a `processing_next` charge takes to settle, and the listing's lag.
 */
export interface Faults {
  latency_ms: number;
  fail_next: number;
  fail_after_commit_next: number;
  lose_answer_next: number;
  processing_next: number;
  processing_ms: number;
  listing_lag_ms: number;
}

export interface GatewayState {
  dataFile: string;
  rules: RuleTable;
  options: SimulatorOptions;
  keyTtlMs: number;
  clock: () => number;
  /** What `PUT /_sim/clock` has moved the clock on by. */
  offsetMs: number;
  /** Each key's answer, with when its first request arrived (ms): the key is forgotten keyTtlMs later. */
  byKey: Map<string, { answer: StoredAnswer; firstAt: number }>;
  /** Every charge record in the order it was made (the listing's order). */
  records: ChargeRecord[];
  byId: Map<string, number>;
  /** When each charge that settles later settles (ms, by the simulator's clock), by charge id. */
  settlesAt: Map<string, number>;
  /** When each charge that lags appears in listings (ms, by the simulator's clock), by charge id. */
  listedAt: Map<string, number>;
  revoked: Set<string>;
  lookups: UpdaterLookup[];
  /** How many charges each card (fingerprint) has had: `pays_after_<N>` declines the first N. */
  chargesOfCard: Map<string, number>;
  faults: Faults;
  /** Keys whose request is being processed: another request with one is answered 409 at once. */
  keysInFlight: Set<string>;
  /** Charge requests received and not yet answered (a test waits on it instead of on the clock). */
  inFlight: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** The simulator's state, with what the records file already holds (the file's folder is made if need be). */
export function openGatewayState(dataFile: string, rules: RuleTable, options: SimulatorOptions): GatewayState {
  mkdirSync(path.dirname(dataFile), { recursive: true });
  const s: GatewayState = {
    dataFile,
    rules,
    options,
    keyTtlMs: options.keyTtlMs ?? DAY_MS,
    clock: options.now ?? Date.now,
    offsetMs: 0,
    byKey: new Map(),
    records: [],
    byId: new Map(),
    settlesAt: new Map(),
    listedAt: new Map(),
    revoked: new Set(),
    lookups: [],
    chargesOfCard: new Map(),
    faults: {
      latency_ms: 0,
      fail_next: 0,
      fail_after_commit_next: 0,
      lose_answer_next: 0,
      processing_next: 0,
      processing_ms: 60_000,
      listing_lag_ms: 0,
    },
    keysInFlight: new Set(),
    inFlight: 0,
  };
  if (existsSync(dataFile)) {
    for (const line of readFileSync(dataFile, 'utf8').split('\n')) {
      if (line.trim()) remember(s, JSON.parse(line) as StoredLine);
    }
  }
  return s;
}

/** The simulator's clock (ms since epoch): the clock it was given, moved on by `PUT /_sim/clock`. */
export const now = (s: GatewayState) => s.clock() + s.offsetMs;

/** Takes a line of the records file into memory. */
function remember(s: GatewayState, line: StoredLine) {
  if ('revoked_token' in line) {
    s.revoked.add(line.revoked_token);
    return;
  }
  if ('lookup' in line) {
    s.lookups.push(line.lookup);
    return;
  }
  if ('clock_offset_ms' in line) {
    // The clock only goes forward, a restart included.
    s.offsetMs = Math.max(s.offsetMs, line.clock_offset_ms);
    return;
  }
  // Lines written before references were kept have none.
  line.record.reference ??= null;
  // A later line for the same key is a charge made after the key expired: the key now means it.
  s.byKey.set(line.record.idempotency_key, {
    answer: line,
    firstAt: Date.parse(line.key_first_at ?? line.record.created_at),
  });
  s.byId.set(line.record.id, s.records.length);
  s.records.push(line.record);
  if (line.settles_at !== undefined) s.settlesAt.set(line.record.id, Date.parse(line.settles_at));
  if (line.listed_at !== undefined) s.listedAt.set(line.record.id, Date.parse(line.listed_at));
  const fp = line.record.fingerprint;
  if (fp !== undefined) s.chargesOfCard.set(fp, (s.chargesOfCard.get(fp) ?? 0) + 1);
}

/** Records a line: appended to the file, then taken into memory. */
export function store(s: GatewayState, line: StoredLine) {
  appendFileSync(s.dataFile, `${JSON.stringify(line)}\n`);
  remember(s, line);
}

/**
 * A charge record as it stands now: `processing`, with no decline yet, until it settles (a charge
 * settled while the simulator was down is settled when it is back); then the record as made.
 */
export function asItStands(s: GatewayState, r: ChargeRecord, at = now(s)): ChargeRecord {
  const settlesAt = s.settlesAt.get(r.id);
  if (settlesAt === undefined || at >= settlesAt) return r;
  return {
    ...r,
    status: 'processing',
    decline_code: null,
    network_response_code: null,
    category: null,
    advice_code: null,
  };
}

/** Whether a charge appears in listings yet (a lagging one, some time after its commit). */
export const isListed = (s: GatewayState, r: ChargeRecord) => (s.listedAt.get(r.id) ?? 0) <= now(s);

/** The key's answer while the processor still remembers it, else null (never used, or expired). */
export function liveAnswer(s: GatewayState, key: string): StoredAnswer | null {
  const known = s.byKey.get(key);
  return known && now(s) - known.firstAt < s.keyTtlMs ? known.answer : null;
}
