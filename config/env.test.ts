import { randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { minInsyncReplicas, personaTopics, topicConfigs } from '../clients/kafka';
import {
  API_HEAP_BESIDES_CACHE_MB,
  API_HEAP_MB,
  API_NODE_ARGS,
  attentionDeadline,
  chargeRetryFor,
  settleFor,
  erasureWaitDeadline,
  fraudReviewDue,
  ConfigError,
  FEED_LAG_MARGIN_MS,
  loadConfig,
  loadSettings,
  localJwtSecretPath,
  localPayloadKeysPath,
  localTokenKeysPath,
  NEO4J_LOCAL_PASSWORD,
  repoRoot,
  temporalTlsOn,
  WORK_KINDS,
  workerSlots,
  WRITE_TX_TIMEOUT_MS,
} from './env';
import { newKeySpec } from './keyRing';

const key = newKeySpec('token-1');
const PERSONA_JWT_SECRET = 'x'.repeat(32);
const PERSONA_PAYLOAD_KEYS = newKeySpec('test-1');
const emptyStack = (): string => mkdtempSync(path.join(tmpdir(), 'persona-stack-'));
/**
 * What production needs besides secrets: the tokens' iss and aud, mTLS to Temporal (the files are read at connect),
 * and in place of the local stack's defaults a Neo4j password of its own, the gateway over https and a metrics token.
 */
const temporalMtls = {
  TEMPORAL_TLS_CERT_FILE: '/run/secrets/temporal.crt',
  TEMPORAL_TLS_KEY_FILE: '/run/secrets/temporal.key',
};
const ownOfProduction = {
  NEO4J_PASSWORD: 'the-graphs-own-password',
  PERSONA_GATEWAY_URL: 'https://gateway.payments.example',
  PERSONA_METRICS_TOKEN: 'a-metrics-token-of-its-own',
};
const production = {
  NODE_ENV: 'production',
  PERSONA_JWT_ISSUER: 'persona',
  PERSONA_JWT_AUDIENCE: 'persona-api',
  ...ownOfProduction,
  ...temporalMtls,
};

describe('configuration', () => {
  it('has working defaults for the local stack', () => {
    const c = loadConfig({
      PERSONA_PAYLOAD_KEYS,
      PERSONA_TOKEN_KEYS: key,
      PERSONA_JWT_SECRET,
      PERSONA_STACK_DIR: emptyStack(),
    });
    expect(c).toMatchObject({
      NEO4J_URI: 'neo4j://127.0.0.1:7687',
      TEMPORAL_ADDRESS: '127.0.0.1:7233',
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: 'persona',
      PERSONA_HTTP_PORT: 8080,
      PERSONA_GRPC_PORT: 50051,
      neo4jBoltHost: '127.0.0.1',
      neo4jBoltPort: 7687,
    });
    expect(c.tokenKeys.active.id).toBe('token-1');
    expect(c.tokenKeys.active.key.equals(Buffer.from(key.slice('token-1:'.length), 'base64'))).toBe(true);
  });

  it('names every wrong variable at once', () => {
    const attempt = () =>
      loadSettings({
        NEO4J_URI: 'http://x',
        TEMPORAL_ADDRESS: 'nohostport',
        PERSONA_HTTP_PORT: '99999',
        LOG_LEVEL: 'loud',
      });
    expect(attempt).toThrow(ConfigError);
    try {
      attempt();
    } catch (err) {
      const names = (err as ConfigError).issues.map((i) => i.split(':')[0]);
      expect(names.sort()).toEqual(['LOG_LEVEL', 'NEO4J_URI', 'PERSONA_HTTP_PORT', 'TEMPORAL_ADDRESS']);
    }
  });

  it('reads the expiry scan schedule and refuses a time or zone that does not exist', () => {
    expect(loadSettings({})).toMatchObject({
      PERSONA_EXPIRY_SCAN_AT: '06:00',
      PERSONA_EXPIRY_SCAN_TIMEZONE: 'UTC',
      PERSONA_EXPIRY_BATCH_SIZE: 5000,
      PERSONA_EXPIRY_SCAN_LANES: 2,
    });
    expect(
      loadSettings({ PERSONA_EXPIRY_SCAN_AT: '23:59', PERSONA_EXPIRY_SCAN_TIMEZONE: 'Asia/Kolkata' }),
    ).toMatchObject({
      PERSONA_EXPIRY_SCAN_AT: '23:59',
      PERSONA_EXPIRY_SCAN_TIMEZONE: 'Asia/Kolkata',
    });
    try {
      loadSettings({
        PERSONA_EXPIRY_SCAN_AT: '24:00',
        PERSONA_EXPIRY_SCAN_TIMEZONE: 'Mars/Olympus',
        PERSONA_EXPIRY_BATCH_SIZE: '0',
      });
      expect.unreachable();
    } catch (err) {
      expect((err as ConfigError).issues.map((i) => i.split(':')[0]).sort()).toEqual([
        'PERSONA_EXPIRY_BATCH_SIZE',
        'PERSONA_EXPIRY_SCAN_AT',
        'PERSONA_EXPIRY_SCAN_TIMEZONE',
      ]);
    }
  });

  it('gives ops 24 hours to answer a recovery before it is overdue, or the hours set, and refuses none', () => {
    expect(attentionDeadline(loadSettings({}))).toBe('1440m');
    expect(attentionDeadline(loadSettings({ PERSONA_ATTENTION_DEADLINE_HOURS: '1.5' }))).toBe('90m');
    for (const wrong of ['0', '-1', 'soon'])
      expect(() => loadSettings({ PERSONA_ATTENTION_DEADLINE_HOURS: wrong })).toThrow(
        /PERSONA_ATTENTION_DEADLINE_HOURS/,
      );
  });

  it('gives a stopping recovery 24 hours to learn an unknown charge before it is overdue, or the hours set', () => {
    expect(settleFor(loadSettings({}))).toBe('1440m');
    expect(settleFor(loadSettings({ PERSONA_SETTLE_DEADLINE_HOURS: '0.5' }))).toBe('30m');
    // Never rounded down to no time at all (a zero timeout is no timeout to Temporal).
    expect(settleFor(loadSettings({ PERSONA_SETTLE_DEADLINE_HOURS: '0.001' }))).toBe('1m');
    expect(chargeRetryFor(loadSettings({ PERSONA_CHARGE_RETRY_HOURS: '0.001' }))).toBe('1m');
    expect(attentionDeadline(loadSettings({ PERSONA_ATTENTION_DEADLINE_HOURS: '0.001' }))).toBe('1m');
    for (const wrong of ['0', '-1', 'soon', String(24 * 31)])
      expect(() => loadSettings({ PERSONA_SETTLE_DEADLINE_HOURS: wrong })).toThrow(/PERSONA_SETTLE_DEADLINE_HOURS/);
  });

  it('gives an erasure 24 hours of waiting before it is overdue, or the hours set, and refuses none', () => {
    expect(erasureWaitDeadline(loadSettings({}))).toBe('1440m');
    expect(erasureWaitDeadline(loadSettings({ PERSONA_ERASURE_WAIT_DEADLINE_HOURS: '0.5' }))).toBe('30m');
    for (const wrong of ['0', '-1', 'soon', '721'])
      expect(() => loadSettings({ PERSONA_ERASURE_WAIT_DEADLINE_HOURS: wrong })).toThrow(
        /PERSONA_ERASURE_WAIT_DEADLINE_HOURS/,
      );
  });

  it('gives ops 24 hours to decide a fraud review before it is overdue, or the hours set', () => {
    expect(fraudReviewDue(loadSettings({}))).toBe('1440m');
    expect(fraudReviewDue(loadSettings({ PERSONA_FRAUD_REVIEW_DUE_HOURS: '4' }))).toBe('240m');
    for (const wrong of ['0', 'soon'])
      expect(() => loadSettings({ PERSONA_FRAUD_REVIEW_DUE_HOURS: wrong })).toThrow(/PERSONA_FRAUD_REVIEW_DUE_HOURS/);
  });

  it('takes one origin for the codec server’s CORS, never a pattern', () => {
    expect(loadSettings({ PERSONA_CODEC_CORS_ORIGIN: 'https://temporal.example.com' }).PERSONA_CODEC_CORS_ORIGIN).toBe(
      'https://temporal.example.com',
    );
    expect(loadSettings({ PERSONA_CODEC_CORS_ORIGIN: '' }).PERSONA_CODEC_CORS_ORIGIN).toBe('');
    for (const bad of ['*', 'null', 'https://*.example.com', 'https://ui.example.com/path'])
      expect(() => loadSettings({ PERSONA_CODEC_CORS_ORIGIN: bad })).toThrow(/PERSONA_CODEC_CORS_ORIGIN/);
  });

  it('reads the fraud settings and refuses a step outside (0, 1]', () => {
    expect(loadSettings({})).toMatchObject({ PERSONA_FRAUD_TRUST_STEP: 0.1, PERSONA_FRAUD_REVIEW_DAYS: 30 });
    expect(() => loadSettings({ PERSONA_FRAUD_TRUST_STEP: '0' })).toThrow(/PERSONA_FRAUD_TRUST_STEP/);
    expect(() => loadSettings({ PERSONA_FRAUD_REVIEW_DAYS: 'soon' })).toThrow(/PERSONA_FRAUD_REVIEW_DAYS/);
  });

  it('refuses production without the tokens’ issuer and audience, naming both variables', () => {
    const secrets = {
      PERSONA_TOKEN_KEYS: key,
      PERSONA_JWT_SECRET,
      PERSONA_PAYLOAD_KEYS,
      NODE_ENV: 'production',
      ...ownOfProduction,
      ...temporalMtls,
    };
    try {
      loadConfig(secrets);
      expect.unreachable();
    } catch (err) {
      expect((err as ConfigError).issues.map((i) => i.split(':')[0]).sort()).toEqual([
        'PERSONA_JWT_AUDIENCE',
        'PERSONA_JWT_ISSUER',
      ]);
      expect((err as ConfigError).message).toMatch(/set PERSONA_JWT_ISSUER and PERSONA_JWT_AUDIENCE/);
    }
    expect(() => loadConfig({ ...secrets, PERSONA_JWT_ISSUER: 'persona' })).toThrow(/PERSONA_JWT_AUDIENCE/);
    expect(loadConfig({ ...secrets, ...production })).toMatchObject(production);
    // Outside production they stay optional.
    expect(
      loadConfig({ PERSONA_PAYLOAD_KEYS, PERSONA_TOKEN_KEYS: key, PERSONA_JWT_SECRET }).PERSONA_JWT_ISSUER,
    ).toBeUndefined();
  });

  it('refuses a JWKS URL that is not https, or an unsigned events webhook, in production', () => {
    const secrets = { PERSONA_TOKEN_KEYS: key, PERSONA_JWT_SECRET, PERSONA_PAYLOAD_KEYS };
    expect(() =>
      loadConfig({ ...secrets, ...production, PERSONA_JWKS_URL: 'http://idp.example/.well-known/jwks.json' }),
    ).toThrow(/PERSONA_JWKS_URL: must be https:\/\/ in production/);
    expect(
      loadConfig({ ...secrets, ...production, PERSONA_JWKS_URL: 'https://idp.example/jwks' }).PERSONA_JWKS_URL,
    ).toBe('https://idp.example/jwks');
    expect(loadConfig({ ...secrets, PERSONA_JWKS_URL: 'http://127.0.0.1:9/jwks' }).PERSONA_JWKS_URL).toMatch(/^http:/);
    // An events webhook in production must be signed.
    const webhook = { PERSONA_EVENTS_WEBHOOK_URL: 'https://subscriber.example/events' };
    expect(() => loadConfig({ ...secrets, ...production, ...webhook })).toThrow(/PERSONA_EVENTS_WEBHOOK_SECRET/);
    expect(
      loadConfig({ ...secrets, ...production, ...webhook, PERSONA_EVENTS_WEBHOOK_SECRET: 'x'.repeat(32) })
        .PERSONA_EVENTS_WEBHOOK_SECRET,
    ).toHaveLength(32);
  });

  it('reads the trusted proxies, the console’s rate, the merge and wallet caps, and the archives’ deadline', () => {
    expect(loadSettings({})).toMatchObject({
      PERSONA_TRUSTED_PROXIES: [],
      PERSONA_RATE_LIMIT_STAFF: { perSecond: 10, burst: 40 },
      PERSONA_RATE_LIMIT_VERIFY: { perSecond: 50, burst: 200 },
      PERSONA_MERGE_PROPOSALS_PER_DAY: 3,
      PERSONA_MAX_PAYMENT_METHODS: 20,
      PERSONA_BACKUP_MAX_AGE_DAYS: 30,
    });
    expect(loadSettings({ PERSONA_TRUSTED_PROXIES: '10.0.0.0/8, 192.0.2.1,fd00::/8' }).PERSONA_TRUSTED_PROXIES).toEqual(
      ['10.0.0.0/8', '192.0.2.1', 'fd00::/8'],
    );
    expect(() => loadSettings({ PERSONA_TRUSTED_PROXIES: 'proxy.internal' })).toThrow(/PERSONA_TRUSTED_PROXIES/);
    expect(() => loadSettings({ PERSONA_BACKUP_MAX_AGE_DAYS: '90' })).toThrow(/PERSONA_BACKUP_MAX_AGE_DAYS/);
  });

  it('never logs consent codes in production, and reads the merge windows (7 and 90 days by default)', () => {
    const secrets = { PERSONA_TOKEN_KEYS: key, PERSONA_JWT_SECRET, PERSONA_PAYLOAD_KEYS };
    expect(() => loadConfig({ ...secrets, ...production, PERSONA_LOG_NOTIFICATION_CODES: 'true' })).toThrow(
      /PERSONA_LOG_NOTIFICATION_CODES: not in production/,
    );
    expect(loadConfig({ ...secrets, PERSONA_LOG_NOTIFICATION_CODES: 'true' }).PERSONA_LOG_NOTIFICATION_CODES).toBe(
      'true',
    );
    expect(loadConfig({ ...secrets, ...production }).PERSONA_LOG_NOTIFICATION_CODES).toBe('false');
    expect(loadSettings({})).toMatchObject({ PERSONA_MERGE_CONSENT_DAYS: 7, PERSONA_UNMERGE_DAYS: 90 });
    expect(() => loadSettings({ PERSONA_MERGE_CONSENT_DAYS: '0' })).toThrow(/PERSONA_MERGE_CONSENT_DAYS/);
  });

  it('reads the token age and recent sign-in windows, with defaults of 24 h and 5 min', () => {
    expect(loadSettings({})).toMatchObject({ PERSONA_JWT_MAX_AGE_SECONDS: 86_400, PERSONA_RECENT_AUTH_SECONDS: 300 });
    expect(() => loadSettings({ PERSONA_JWT_MAX_AGE_SECONDS: '0' })).toThrow(/PERSONA_JWT_MAX_AGE_SECONDS/);
    expect(() => loadSettings({ PERSONA_RECENT_AUTH_SECONDS: 'soon' })).toThrow(/PERSONA_RECENT_AUTH_SECONDS/);
  });

  it('reads the locally generated token key outside production, and insists on one in production', () => {
    const stack = emptyStack();
    expect(() => loadConfig({ PERSONA_PAYLOAD_KEYS, PERSONA_STACK_DIR: stack, PERSONA_JWT_SECRET })).toThrow(
      /PERSONA_TOKEN_KEYS: not set/,
    );
    mkdirSync(path.dirname(localTokenKeysPath(stack)), { recursive: true });
    writeFileSync(localTokenKeysPath(stack), key);
    expect(loadConfig({ PERSONA_PAYLOAD_KEYS, PERSONA_STACK_DIR: stack, PERSONA_JWT_SECRET }).tokenKeys.ids).toEqual([
      'token-1',
    ]);
    expect(() =>
      loadConfig({ PERSONA_PAYLOAD_KEYS, PERSONA_STACK_DIR: stack, PERSONA_JWT_SECRET, ...production }),
    ).toThrow(/PERSONA_TOKEN_KEYS: required in production/);
  });

  it('reads the local payload key ring outside production, insists on one in production, and names a bad one', () => {
    const stack = emptyStack();
    const base = { PERSONA_STACK_DIR: stack, PERSONA_TOKEN_KEYS: key, PERSONA_JWT_SECRET };
    expect(() => loadConfig(base)).toThrow(/PERSONA_PAYLOAD_KEYS: not set and no local key ring yet/);
    mkdirSync(path.dirname(localPayloadKeysPath(stack)), { recursive: true });
    writeFileSync(localPayloadKeysPath(stack), newKeySpec('local-1'));
    expect(loadConfig(base).payloadKeys.active.id).toBe('local-1');
    expect(() => loadConfig({ ...base, ...production })).toThrow(/PERSONA_PAYLOAD_KEYS: required in production/);
    expect(loadConfig({ ...base, ...production, PERSONA_PAYLOAD_KEYS }).payloadKeys.active.id).toBe('test-1');
    expect(() => loadConfig({ ...base, PERSONA_PAYLOAD_KEYS: 'k:AAAA' })).toThrow(
      /PERSONA_PAYLOAD_KEYS: payload key k must be 32 bytes \(got 3\)/,
    );
  });

  it('reads the local JWT secret outside production; JWKS needs no secret', () => {
    const stack = emptyStack();
    expect(() => loadConfig({ PERSONA_PAYLOAD_KEYS, PERSONA_STACK_DIR: stack, PERSONA_TOKEN_KEYS: key })).toThrow(
      /PERSONA_JWT_SECRET: not set/,
    );
    mkdirSync(path.dirname(localJwtSecretPath(stack)), { recursive: true });
    writeFileSync(localJwtSecretPath(stack), 'y'.repeat(44));
    expect(loadConfig({ PERSONA_PAYLOAD_KEYS, PERSONA_STACK_DIR: stack, PERSONA_TOKEN_KEYS: key }).jwtSecret).toBe(
      'y'.repeat(44),
    );
    expect(() =>
      loadConfig({ PERSONA_PAYLOAD_KEYS, PERSONA_STACK_DIR: stack, PERSONA_TOKEN_KEYS: key, ...production }),
    ).toThrow(/PERSONA_JWT_SECRET: required in production/);
    expect(
      loadConfig({
        PERSONA_PAYLOAD_KEYS,
        PERSONA_STACK_DIR: emptyStack(),
        PERSONA_TOKEN_KEYS: key,
        PERSONA_JWKS_URL: 'https://id.example.com/jwks.json',
      }).jwtSecret,
    ).toBe('');
  });

  it('refuses a token key that is not 32 bytes or has no id, naming the variable and not the key', () => {
    const load = (keys: string) =>
      loadConfig({
        PERSONA_PAYLOAD_KEYS,
        PERSONA_TOKEN_KEYS: keys,
        PERSONA_JWT_SECRET,
        PERSONA_STACK_DIR: emptyStack(),
      });
    const short = randomBytes(16).toString('base64');
    expect(() => load(`t1:${short}`)).toThrow(/PERSONA_TOKEN_KEYS: payment-token key t1 must be 32 bytes \(got 16\)/);
    expect(() => load(randomBytes(32).toString('base64'))).toThrow(/PERSONA_TOKEN_KEYS: entry 1 must be <key id>/);
    expect(() => load(`a.b:${randomBytes(32).toString('base64')}`)).toThrow(/payment-token key id "a.b" must match/);
    expect(() => load(`t1:${short}`)).not.toThrow(new RegExp(short.replace(/[+/=]/g, '.')));
  });

  it('runs all four kinds of work by default, each with its own slots, and reads a subset and other slots', () => {
    const d = loadSettings({});
    expect(d.PERSONA_WORKER_KINDS).toEqual(['charges', 'interactive', 'bulk', 'deliveries']);
    expect(WORK_KINDS.map((kind) => workerSlots(d, kind))).toEqual([
      { activities: 20, workflowTasks: 10 },
      { activities: 20, workflowTasks: 10 },
      { activities: 6, workflowTasks: 4 },
      { activities: 4, workflowTasks: 4 },
    ]);
    const bulkOnly = loadSettings({ PERSONA_WORKER_KINDS: ' bulk ', PERSONA_WORKER_SLOTS_BULK: '40, 8' });
    expect(bulkOnly.PERSONA_WORKER_KINDS).toEqual(['bulk']);
    expect(workerSlots(bulkOnly, 'bulk')).toEqual({ activities: 40, workflowTasks: 8 });
  });

  it('refuses an unknown or repeated kind, no kind, and slots out of range, naming each variable', () => {
    const wrong = (env: Record<string, string>) => {
      try {
        loadSettings(env);
      } catch (err) {
        return (err as ConfigError).issues;
      }
      throw new Error('accepted');
    };
    expect(wrong({ PERSONA_WORKER_KINDS: 'charges,batch' })).toEqual([
      'PERSONA_WORKER_KINDS: expected a comma-separated list of charges, interactive, bulk, deliveries ' +
        'without repeats (unknown: batch)',
    ]);
    expect(wrong({ PERSONA_WORKER_KINDS: 'bulk,bulk' })[0]).toMatch(/^PERSONA_WORKER_KINDS: .*without repeats/);
    expect(wrong({ PERSONA_WORKER_KINDS: ' , ' })[0]).toMatch(/^PERSONA_WORKER_KINDS: /);
    const slots = wrong({
      PERSONA_WORKER_SLOTS_CHARGES: '0,10',
      PERSONA_WORKER_SLOTS_INTERACTIVE: '20',
      PERSONA_WORKER_SLOTS_BULK: '6,1',
      PERSONA_WORKER_SLOTS_DELIVERIES: '4,1001',
    });
    expect(slots.map((i) => i.split(':')[0]).sort()).toEqual([
      'PERSONA_WORKER_SLOTS_BULK',
      'PERSONA_WORKER_SLOTS_CHARGES',
      'PERSONA_WORKER_SLOTS_DELIVERIES',
      'PERSONA_WORKER_SLOTS_INTERACTIVE',
    ]);
    expect(slots).toContain('PERSONA_WORKER_SLOTS_INTERACTIVE: expected <activities>,<workflow tasks> such as 20,10');
    expect(slots).toContain('PERSONA_WORKER_SLOTS_BULK: activities from 1 to 1000, workflow tasks from 2 to 1000');
  });

  it('refuses a feed lag shorter than the write-transaction timeout plus a margin, naming both', () => {
    expect(loadSettings({}).PERSONA_EVENTS_FEED_LAG_MS).toBe(15_000);
    const least = WRITE_TX_TIMEOUT_MS + FEED_LAG_MARGIN_MS;
    expect(loadSettings({ PERSONA_EVENTS_FEED_LAG_MS: String(least) }).PERSONA_EVENTS_FEED_LAG_MS).toBe(least);
    for (const lag of [0, 1000, WRITE_TX_TIMEOUT_MS, least - 1]) {
      expect(() => loadSettings({ PERSONA_EVENTS_FEED_LAG_MS: String(lag) })).toThrow(ConfigError);
      try {
        loadSettings({ PERSONA_EVENTS_FEED_LAG_MS: String(lag) });
      } catch (err) {
        expect((err as ConfigError).issues).toEqual([
          expect.stringMatching(/^PERSONA_EVENTS_FEED_LAG_MS: .*WRITE_TX_TIMEOUT_MS \(10000 ms\) plus 2000 ms/),
        ]);
      }
    }
  });
});

describe("what production refuses of the local stack's defaults and of plain http", () => {
  const issuesOf = (env: Record<string, string | undefined>): string[] => {
    try {
      loadSettings(env);
      return [];
    } catch (err) {
      return (err as ConfigError).issues;
    }
  };
  const webhookSecret = 'w'.repeat(32);

  it('accepts a production configuration that sets each of them right', () => {
    expect(issuesOf(production)).toEqual([]);
  });

  it("refuses the local stack's Neo4j password, or none, in production, naming NEO4J_PASSWORD", () => {
    for (const password of [undefined, NEO4J_LOCAL_PASSWORD])
      expect(issuesOf({ ...production, NEO4J_PASSWORD: password }), password).toEqual([
        expect.stringMatching(
          /^NEO4J_PASSWORD: required in production .*local stack's default \(persona-local\): set NEO4J_PASSWORD/,
        ),
      ]);
    expect(issuesOf({ ...production, NEO4J_PASSWORD: '' })).toEqual([
      'NEO4J_PASSWORD: Neo4j needs a password of at least 8 characters',
    ]);
    // The local stack runs on it.
    expect(loadSettings({}).NEO4J_PASSWORD).toBe(NEO4J_LOCAL_PASSWORD);
  });

  it('refuses an http:// payment gateway in production, unless PERSONA_GATEWAY_ALLOW_PLAINTEXT=true', () => {
    const plain = { ...production, PERSONA_GATEWAY_URL: 'http://gateway.payments.example:4010' };
    expect(issuesOf(plain)).toEqual([
      expect.stringMatching(
        /^PERSONA_GATEWAY_URL: must be https:\/\/ in production .*PERSONA_GATEWAY_ALLOW_PLAINTEXT=true/,
      ),
    ]);
    // Unset, it is the local simulator's http address: refused too.
    expect(issuesOf({ ...production, PERSONA_GATEWAY_URL: undefined })[0]).toMatch(/^PERSONA_GATEWAY_URL: /);
    expect(issuesOf({ ...plain, PERSONA_GATEWAY_ALLOW_PLAINTEXT: 'true' })).toEqual([]);
    expect(loadSettings({}).PERSONA_GATEWAY_URL).toBe('http://127.0.0.1:4010');
  });

  it('refuses a notification webhook over http:// or unsigned in production, naming what to set', () => {
    const https = { PERSONA_NOTIFY_WEBHOOK_URL: 'https://notify.example/persona' };
    expect(issuesOf({ ...production, ...https })).toEqual([
      expect.stringMatching(/^PERSONA_NOTIFY_WEBHOOK_SECRET: required in production with PERSONA_NOTIFY_WEBHOOK_URL/),
    ]);
    const http = {
      PERSONA_NOTIFY_WEBHOOK_URL: 'http://notify.example/persona',
      PERSONA_NOTIFY_WEBHOOK_SECRET: webhookSecret,
    };
    expect(issuesOf({ ...production, ...http })).toEqual([
      'PERSONA_NOTIFY_WEBHOOK_URL: must be https:// in production (NODE_ENV=production): notifications carry ' +
        'merge consent codes',
    ]);
    expect(issuesOf({ ...production, ...https, PERSONA_NOTIFY_WEBHOOK_SECRET: webhookSecret })).toEqual([]);
    // Outside production, neither (the tests' receivers are http:// on loopback); a short secret never.
    expect(issuesOf({ PERSONA_NOTIFY_WEBHOOK_URL: 'http://127.0.0.1:9/notify' })).toEqual([]);
    expect(issuesOf({ ...https, PERSONA_NOTIFY_WEBHOOK_SECRET: 'short' })).toEqual([
      'PERSONA_NOTIFY_WEBHOOK_SECRET: must be at least 32 characters',
    ]);
  });

  it('refuses Chimera and the trace collector over http:// to another host in production', () => {
    const plain = { CHIMERA_URL: 'http://chimera.agents:8080', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318' };
    expect(issuesOf({ ...production, ...plain })).toEqual([
      'CHIMERA_URL: must be https:// in production (NODE_ENV=production), or http:// to this host only: each ' +
        'sighting names a customer and a device',
      expect.stringMatching(/^OTEL_EXPORTER_OTLP_ENDPOINT: must be https:\/\/ in production .*spans name customers/),
    ]);
    // A collector beside the process, and https anywhere.
    for (const local of ['http://127.0.0.1:4318', 'http://localhost:4318', 'http://[::1]:4318'])
      expect(issuesOf({ ...production, OTEL_EXPORTER_OTLP_ENDPOINT: local, CHIMERA_URL: local })).toEqual([]);
    expect(
      issuesOf({ ...production, CHIMERA_URL: 'https://chimera.agents', OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otel' }),
    ).toEqual([]);
    // Not a loopback name, though it starts like one.
    expect(issuesOf({ ...production, CHIMERA_URL: 'http://127.0.0.1.evil.example' })).toHaveLength(1);
    expect(issuesOf(plain)).toEqual([]);
  });

  it('refuses an events webhook over http:// in production, as a notification webhook', () => {
    const http = { PERSONA_EVENTS_WEBHOOK_URL: 'http://subscriber.example/events' };
    expect(issuesOf({ ...production, ...http, PERSONA_EVENTS_WEBHOOK_SECRET: webhookSecret })).toEqual([
      expect.stringMatching(/^PERSONA_EVENTS_WEBHOOK_URL: must be https:\/\/ in production/),
    ]);
    expect(issuesOf({ ...http })).toEqual([]);
  });

  it("requires the metrics token in production, for the api's and the worker's /metrics", () => {
    expect(issuesOf({ ...production, PERSONA_METRICS_TOKEN: undefined })).toEqual([
      expect.stringMatching(/^PERSONA_METRICS_TOKEN: required in production .*the worker's \/metrics/),
    ]);
    expect(loadSettings({}).PERSONA_METRICS_TOKEN).toBeUndefined();
  });

  it('names each of them at once in a production configuration left at the local defaults', () => {
    const local = {
      ...production,
      NEO4J_PASSWORD: undefined,
      PERSONA_GATEWAY_URL: undefined,
      PERSONA_METRICS_TOKEN: undefined,
      PERSONA_NOTIFY_WEBHOOK_URL: 'http://127.0.0.1:9/notify',
      PERSONA_EVENTS_WEBHOOK_URL: 'http://127.0.0.1:9/events',
    };
    expect(
      issuesOf(local)
        .map((i) => i.split(':')[0])
        .sort(),
    ).toEqual([
      'NEO4J_PASSWORD',
      'PERSONA_EVENTS_WEBHOOK_SECRET',
      'PERSONA_EVENTS_WEBHOOK_URL',
      'PERSONA_GATEWAY_URL',
      'PERSONA_METRICS_TOKEN',
      'PERSONA_NOTIFY_WEBHOOK_SECRET',
      'PERSONA_NOTIFY_WEBHOOK_URL',
    ]);
  });
});

describe('Kafka security settings', () => {
  const issuesOf = (env: Record<string, string>): string[] => {
    try {
      loadSettings(env);
      return [];
    } catch (err) {
      return (err as ConfigError).issues;
    }
  };
  const brokers = { KAFKA_BROKERS: 'kafka-1.internal:9093', PERSONA_KAFKA_REPLICATION: '3' };

  it('refuses production with Kafka on but unencrypted or unauthenticated, naming what to set', () => {
    const issues = issuesOf({ ...production, ...brokers });
    expect(issues.map((i) => i.split(':')[0]).sort()).toEqual(['KAFKA_SASL_MECHANISM', 'KAFKA_TLS']);
    expect(issues.join('\n')).toMatch(/KAFKA_ALLOW_PLAINTEXT=true/);
    // TLS alone encrypts but does not say who Persona is.
    expect(issuesOf({ ...production, ...brokers, KAFKA_TLS: 'true' })).toEqual([
      expect.stringMatching(/^KAFKA_SASL_MECHANISM: required in production/),
    ]);
    // TLS with SASL, or TLS with a client certificate: accepted.
    const sasl = { KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512', KAFKA_SASL_USERNAME: 'persona', KAFKA_SASL_PASSWORD: 's' };
    expect(issuesOf({ ...production, ...brokers, KAFKA_TLS: 'true', ...sasl })).toEqual([]);
    const mtls = { KAFKA_TLS_CERT: '/run/persona.crt', KAFKA_TLS_KEY: '/run/persona.key' };
    expect(issuesOf({ ...production, ...brokers, KAFKA_TLS: 'true', ...mtls })).toEqual([]);
    // A mesh that encrypts and authenticates: said explicitly.
    expect(issuesOf({ ...production, ...brokers, KAFKA_ALLOW_PLAINTEXT: 'true' })).toEqual([]);
    // Kafka off in production, or plaintext outside it: nothing to say.
    expect(issuesOf({ ...production })).toEqual([]);
    expect(issuesOf({ ...brokers })).toEqual([]);
  });

  it('refuses production with Kafka on and topics of fewer than 3 replicas, unless said; min ISR within them', () => {
    const secure = {
      KAFKA_TLS: 'true',
      KAFKA_SASL_MECHANISM: 'PLAIN',
      KAFKA_SASL_USERNAME: 'p',
      KAFKA_SASL_PASSWORD: 's',
    };
    const one = { ...production, ...brokers, ...secure, PERSONA_KAFKA_REPLICATION: '1' };
    expect(issuesOf(one)).toEqual([expect.stringMatching(/^PERSONA_KAFKA_REPLICATION: at least 3 in production/)]);
    expect(issuesOf({ ...one, KAFKA_ALLOW_UNREPLICATED: 'true' })).toEqual([]);
    expect(issuesOf({ ...production, ...brokers, ...secure })).toEqual([]);
    // A min ISR above the replication: no write could ever succeed.
    expect(issuesOf({ ...brokers, PERSONA_KAFKA_MIN_INSYNC_REPLICAS: '4' })).toEqual([
      expect.stringMatching(/^PERSONA_KAFKA_MIN_INSYNC_REPLICAS: at most PERSONA_KAFKA_REPLICATION \(3\)/),
    ]);
    // Made with min ISR 2 from 3 replicas (one broker may be down, none lost), else as set, or 1.
    expect(minInsyncReplicas(loadSettings({ ...brokers }))).toBe(2);
    expect(minInsyncReplicas(loadSettings({ ...brokers, PERSONA_KAFKA_MIN_INSYNC_REPLICAS: '3' }))).toBe(3);
    expect(minInsyncReplicas(loadSettings({}))).toBe(1);
    expect(topicConfigs(loadSettings({ ...brokers }), { name: 't', partitions: 1, retentionMs: 1000 })).toEqual([
      { name: 'min.insync.replicas', value: '2' },
      { name: 'retention.ms', value: '1000' },
    ]);
  });

  it("keeps what agents wrote a bounded time: the agents' topics and the dead letters Persona makes", () => {
    const week = 7 * 24 * 3_600_000;
    const retention = (env: Record<string, string>) =>
      Object.fromEntries(personaTopics(loadSettings(env)).map((t) => [t.name, t.retentionMs]));
    expect(retention({})).toMatchObject({
      'synapse.payment-failures.v1': week,
      'chimera.fraud-outcomes.v1': week,
      'cerebrum.routing-outcomes.v1': week,
      'persona.dead-letters.v1': week,
    });
    expect(retention({ PERSONA_KAFKA_AGENT_TOPICS_RETENTION_MS: '86400000' })).toMatchObject({
      'cerebrum.routing-outcomes.v1': 86_400_000,
    });
    expect(() => loadSettings({ PERSONA_KAFKA_AGENT_TOPICS_RETENTION_MS: '-1' })).toThrow(
      /PERSONA_KAFKA_AGENT_TOPICS_RETENTION_MS/,
    );
  });

  it('refuses half a pair, SASL without credentials, and TLS files without TLS', () => {
    expect(issuesOf({ KAFKA_SASL_MECHANISM: 'PLAIN', KAFKA_SASL_USERNAME: 'persona' })).toEqual([
      'KAFKA_SASL_PASSWORD: required with KAFKA_SASL_MECHANISM=PLAIN',
    ]);
    expect(issuesOf({ KAFKA_SASL_USERNAME: 'persona', KAFKA_SASL_PASSWORD: 's' })).toEqual([
      'KAFKA_SASL_MECHANISM: required with KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD',
    ]);
    expect(issuesOf({ KAFKA_TLS: 'true', KAFKA_TLS_CERT: '/run/persona.crt' })).toEqual([
      'KAFKA_TLS_KEY: KAFKA_TLS_CERT and KAFKA_TLS_KEY go together',
    ]);
    expect(issuesOf({ KAFKA_TLS_CA: '/run/ca.pem' })).toEqual(['KAFKA_TLS_CA: needs KAFKA_TLS=true']);
    expect(issuesOf({ KAFKA_SASL_MECHANISM: 'GSSAPI' })[0]).toMatch(/^KAFKA_SASL_MECHANISM: /);
  });

  it('never puts the SASL password where a log line could carry it', () => {
    const s = loadSettings({
      KAFKA_SASL_MECHANISM: 'PLAIN',
      KAFKA_SASL_USERNAME: 'persona',
      KAFKA_SASL_PASSWORD: 'hunter2',
    });
    expect(JSON.stringify(s)).not.toContain('hunter2');
  });
});

describe('Temporal security settings', () => {
  const issuesOf = (env: Record<string, string>): string[] => {
    try {
      loadSettings(env);
      return [];
    } catch (err) {
      return (err as ConfigError).issues;
    }
  };
  const prod = {
    NODE_ENV: 'production',
    PERSONA_JWT_ISSUER: 'persona',
    PERSONA_JWT_AUDIENCE: 'persona-api',
    ...ownOfProduction,
  };

  it('refuses production with a plaintext or unauthenticated Temporal connection unless told it may', () => {
    const plaintext = issuesOf(prod);
    expect(plaintext).toEqual([expect.stringMatching(/^TEMPORAL_TLS: required in production/)]);
    expect(plaintext[0]).toMatch(/TEMPORAL_ALLOW_PLAINTEXT=true/);
    expect(issuesOf({ ...prod, TEMPORAL_TLS: 'false' })).toEqual([
      expect.stringMatching(/^TEMPORAL_TLS: required in production/),
    ]);
    // TLS alone encrypts but does not say who Persona is.
    for (const tlsOnly of [{ TEMPORAL_TLS: 'true' }, { TEMPORAL_TLS_CA_FILE: '/run/ca.pem' }] as Record<
      string,
      string
    >[])
      expect(issuesOf({ ...prod, ...tlsOnly })).toEqual([
        expect.stringMatching(/^TEMPORAL_TLS_CERT_FILE: required in production: .*API key/),
      ]);
    // A client certificate, or an API key (which turns TLS on by itself): accepted.
    expect(issuesOf({ ...prod, ...temporalMtls })).toEqual([]);
    expect(issuesOf({ ...prod, TEMPORAL_API_KEY: 'key' })).toEqual([]);
    expect(issuesOf({ ...prod, TEMPORAL_API_KEY_FILE: '/run/secrets/temporal.apikey' })).toEqual([]);
    // A mesh that encrypts and authenticates: said explicitly.
    expect(issuesOf({ ...prod, TEMPORAL_ALLOW_PLAINTEXT: 'true' })).toEqual([]);
    // Plaintext outside production (the local stack): nothing to say.
    expect(issuesOf({})).toEqual([]);
    expect(loadSettings({}).TEMPORAL_TLS).toBeUndefined();
    expect(temporalTlsOn(loadSettings({}))).toBe(false);
  });

  it('turns TLS on for a CA, a client certificate, a server name or an API key, unless TEMPORAL_TLS says', () => {
    expect(temporalTlsOn({})).toBe(false);
    expect(temporalTlsOn({ TEMPORAL_TLS: 'true' })).toBe(true);
    for (const name of [
      'TEMPORAL_TLS_CA_FILE',
      'TEMPORAL_TLS_CERT_FILE',
      'TEMPORAL_TLS_SERVER_NAME',
      'TEMPORAL_API_KEY',
      'TEMPORAL_API_KEY_FILE',
    ] as const) {
      expect(temporalTlsOn({ [name]: 'x' }), name).toBe(true);
      expect(temporalTlsOn({ [name]: 'x', TEMPORAL_TLS: 'false' }), name).toBe(false);
    }
  });

  it('refuses half a pair, TLS files without TLS, both forms of the key, and a key in plaintext', () => {
    expect(issuesOf({ TEMPORAL_TLS_CERT_FILE: '/run/persona.crt' })).toEqual([
      'TEMPORAL_TLS_KEY_FILE: TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE go together',
    ]);
    expect(issuesOf({ TEMPORAL_TLS_KEY_FILE: '/run/persona.key' })).toEqual([
      'TEMPORAL_TLS_CERT_FILE: TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE go together',
    ]);
    expect(issuesOf({ TEMPORAL_TLS: 'false', TEMPORAL_TLS_CA_FILE: '/run/ca.pem' })).toEqual([
      'TEMPORAL_TLS_CA_FILE: needs TLS, but TEMPORAL_TLS=false',
    ]);
    expect(issuesOf({ TEMPORAL_API_KEY: 'k', TEMPORAL_API_KEY_FILE: '/run/key' })).toEqual([
      'TEMPORAL_API_KEY_FILE: set TEMPORAL_API_KEY or TEMPORAL_API_KEY_FILE, not both',
    ]);
    expect(issuesOf({ TEMPORAL_TLS: 'false', TEMPORAL_API_KEY: 'k' })).toEqual([
      expect.stringMatching(/^TEMPORAL_API_KEY: would be sent in plaintext with TEMPORAL_TLS=false/),
    ]);
    expect(issuesOf({ TEMPORAL_TLS: 'false', TEMPORAL_API_KEY: 'k', TEMPORAL_ALLOW_PLAINTEXT: 'true' })).toEqual([]);
    expect(issuesOf({ TEMPORAL_TLS_SERVER_NAME: 'not a name' })[0]).toMatch(/^TEMPORAL_TLS_SERVER_NAME: /);
    expect(issuesOf({ TEMPORAL_TLS: 'yes' })[0]).toMatch(/^TEMPORAL_TLS: /);
  });

  it('never puts the API key where a log line could carry it', () => {
    const s = loadSettings({ TEMPORAL_API_KEY: 'temporal-hunter2' });
    expect(JSON.stringify(s)).not.toContain('temporal-hunter2');
    expect(s.temporalApiKey?.()).toBe('temporal-hunter2');
  });
});

describe("the api's heap limit", () => {
  it('is passed by every way the api is started, and fits the read cache at its default bound', () => {
    const [flag] = API_NODE_ARGS;
    expect(flag).toBe(`--max-old-space-size=${API_HEAP_MB}`);
    const read = (file: string) => readFileSync(path.join(repoRoot, file), 'utf8');
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    expect(pkg.scripts['start:api']).toContain(`node ${flag} `);
    expect(read('Dockerfile')).toContain(`CMD ["node", "${flag}", "--enable-source-maps", "api/main.js"]`);
    expect(read('docker-compose.yml')).toContain(`["node", "${flag}", "--enable-source-maps", "api/main.js"]`);
    expect(read('stack/dev.ts')).toContain("start('api', 'api/main.ts', API_NODE_ARGS)");
    const defaults = loadConfig({ PERSONA_PAYLOAD_KEYS, PERSONA_JWT_SECRET, PERSONA_TOKEN_KEYS: key });
    expect(defaults.PERSONA_READ_CACHE_MAX_MB + API_HEAP_BESIDES_CACHE_MB).toBeLessThanOrEqual(API_HEAP_MB);
  });
});
