/**
 * An end-to-end harness: the real REST app, the real Temporal dev server, a real Worker with
 * the real activities (graph writes on the local Neo4j, the local Chimera stand-in), each on
 * a task queue of its own.
 */
import type { KafkaProducer } from '../../clients/kafka';
import { randomUUID } from 'node:crypto';
import type { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker, type WorkerInterceptors } from '@temporalio/worker';
import { SignJWT } from 'jose';
import { createActivities } from '../../activities';
import type { ChargePolicy } from '../../activities/recovery';
import { apiDepsFromConfig, withOwnState, type ApiDeps } from '../../api/deps';
import { RateLimiter } from '../../api/rateLimit';
import { createApp } from '../../api/rest/app';
import { LocalChimeraClient, type ChimeraClient } from '../../clients/chimera';
import { LogNotificationSink, type NotificationSink } from '../../clients/notifications';
import { HttpPaymentGateway } from '../../clients/paymentGateway';
import type { ContextPolicy } from '../../graph/context';
import { loadSettings, profileRules } from '../../config/env';
import { createLogger } from '../../runtime/logger';
import { RequestContext } from '../../runtime/requestContext';
import { payloadCodecFromConfig } from '../../temporal/payloadCodec';
import { withActivityInterceptor, workerInterceptors } from '../../workers/logging';
import { graphHistoryKeys, WorkflowCustomers, type HistoryKeyStore } from '../../graph/historyKeys';
import { openProcessActivityInterceptor, openProcessSinks } from '../../workers/openProcesses';
import { signedBookmarksToCarry } from '../../temporal/bookmarkSeal';
import { connectTemporal } from '../../temporal/connection';
import { openTestGraph, type TestGraph } from './graph';
import { loadRuleTable } from '../../payments/ruleTables';
import { nativeConnectionOptions } from '../../temporal/transport';
import { EventSequencer } from '../../workers/eventSequencer';
import { workflowBundlePath, WORKFLOWS_PATH } from '../../workers/bundle';

export interface Harness {
  app: ReturnType<typeof createApp>;
  /** What the app runs on (its read cache's figures, for one). */
  deps: ApiDeps;
  graph: TestGraph;
  client: Client;
  /** The request context the harness's client and app share. */
  requests: RequestContext;
  taskQueue: string;
  token(scope: string, sub?: string, claims?: TokenClaims): Promise<string>;
  /** The same app over changed dependencies (e.g. a shorter feed lag). */
  withDeps(change: (deps: ApiDeps) => ApiDeps): ReturnType<typeof createApp>;
  close(): Promise<void>;
}

type RealActivities = ReturnType<typeof createActivities>;

export interface HarnessOptions {
  limits?: Partial<ApiDeps['limits']>;
  /** Wraps the real activities, e.g. to make a worker "die" after a side effect. */
  wrapActivities?: (real: RealActivities) => RealActivities;
  /** The worker's Kafka producer (the publisher's activity needs one; none by default). */
  kafka?: KafkaProducer;
  /** Where the harness's event sequencer sends invalidations (absent: it numbers the log only). */
  invalidations?: { producer: KafkaProducer; topic: string };
  /** Chimera as the worker sees it (default: the local stand-in). */
  chimera?: (graph: TestGraph) => ChimeraClient;
  policy?: ContextPolicy;
  /** Where the worker's notifications go (default: the log). */
  notifications?: () => NotificationSink;
  /** The rate limiter (default: limits no test reaches). */
  rateLimiter?: RateLimiter;
  /** The worker's PERSONA_EVENTS_WEBHOOK_URL: where its event relay delivers (none by default). */
  eventsWebhookUrl?: string;
  /** The worker's task queue (default: one of its own). */
  taskQueue?: string;
  /**
   * The gateway the worker charges (default: the stack's simulator, with the default charge
   * policy): a test's own simulator, and the charge policy it is used with (a settle window of
   * seconds, say, where production waits minutes).
   */
  gateway?: { url: string; chargePolicy?: ChargePolicy };
  /**
   * Which customer each workflow is, as the worker's codec knows it (default: a directory of its
   * own, as in a worker process apart from the api: it learns from the payloads it decodes).
   */
  workflowCustomers?: WorkflowCustomers;
}

/** A limiter no test reaches: 100,000 requests at once, per caller. */
export function generousRateLimiter(): RateLimiter {
  const limit = { perSecond: 100_000, burst: 100_000 };
  return new RateLimiter({
    limits: { anonymous: limit, self: limit, staff: limit, agent: limit, ops: limit, verify: limit },
    maxKeys: 100_000,
  });
}

/** The events webhook's signing secret in tests (PERSONA_EVENTS_WEBHOOK_SECRET in a deployment). */
export const TEST_WEBHOOK_SECRET = 'a-test-webhook-secret-that-is-long-enough';

/** Claims a test may set on a token beyond scope and subject. */
export interface TokenClaims {
  /**
   * When the person signed in (seconds since the epoch); null for none. A `self` token gets
   * "now" unless told otherwise: a customer who just signed in.
   */
  authTime?: number | null;
  /** Another iat (seconds since the epoch), e.g. an old token. */
  issuedAt?: number;
}

/**
 * A bearer JWT with these scopes (and subject), signed with the local HS256 secret, valid for
 * `ttl` (10 minutes), with iat and exp, and the iss/aud the api expects when they are configured.
 */
export async function signToken(
  jwtSecret: string,
  scope: string,
  sub?: string,
  ttl: string | number = '10m',
  claims: TokenClaims = {},
): Promise<string> {
  const { PERSONA_JWT_ISSUER: issuer, PERSONA_JWT_AUDIENCE: audience } = loadSettings();
  const now = Math.floor(Date.now() / 1000);
  const authTime = claims.authTime === undefined ? (scope.split(' ').includes('self') ? now : null) : claims.authTime;
  let jwt = new SignJWT({ scope, ...(authTime === null ? {} : { auth_time: authTime }) })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt(claims.issuedAt ?? now)
    .setExpirationTime(typeof ttl === 'number' ? (claims.issuedAt ?? now) + ttl : ttl);
  if (sub) jwt = jwt.setSubject(sub);
  if (issuer) jwt = jwt.setIssuer(issuer);
  if (audience) jwt = jwt.setAudience(audience);
  return jwt.sign(new TextEncoder().encode(jwtSecret));
}

/** The customers' keys as a worker's publisher seals with them, and a consumer in the repo opens with. */
export function testEventKeys(graph: TestGraph): HistoryKeyStore {
  return graphHistoryKeys(graph, graph.config.payloadKeys, { maxEntries: 0, ttlMs: 0, decodes: false });
}

/** The real activities as the harness's worker runs them (wrapped when the options say so). */
export function harnessActivities(graph: TestGraph, client: Client, options: HarnessOptions = {}): RealActivities {
  const gatewayUrl = options.gateway?.url ?? graph.config.PERSONA_GATEWAY_URL;
  return (options.wrapActivities ?? ((a) => a))(
    createActivities({
      graph,
      chimera: options.chimera?.(graph) ?? new LocalChimeraClient(graph),
      gateway: new HttpPaymentGateway(gatewayUrl, 5000),
      cards: new HttpPaymentGateway(gatewayUrl, 5000),
      updater: new HttpPaymentGateway(gatewayUrl, 5000),
      ...(options.gateway?.chargePolicy ? { chargePolicy: options.gateway.chargePolicy } : {}),
      networkRules: loadRuleTable(),
      notifications: options.notifications?.() ?? new LogNotificationSink(createLogger('test-notify', 'silent')),
      trustThreshold: graph.config.PERSONA_TRUST_THRESHOLD,
      profileRules: profileRules(graph.config),
      temporal: client,
      kafka: options.kafka,
      eventKeys: testEventKeys(graph),
      // Each Kafka test publishes to topics of its own (`test.<run>.…`), all on this one worker.
      publishesTo: (topic) => topic.startsWith('test.'),
      events: { url: options.eventsWebhookUrl, secret: TEST_WEBHOOK_SECRET },
    }),
  );
}

/**
 * The harness's deps as a test changed them. A copy spread from them that brings no state of its
 * own gets its own (write lanes built with its graph, limits and metrics…), as every api built
 * from such deps does; deps a test built itself (apiDepsFromConfig) keep theirs.
 */
function changedDeps(deps: ApiDeps, change: (deps: ApiDeps) => ApiDeps): ApiDeps {
  const changed = change(deps);
  const sharesState =
    changed.interactionLanes === deps.interactionLanes && changed.trustedDeviceReports === deps.trustedDeviceReports;
  return changed !== deps && sharesState ? withOwnState(changed) : changed;
}

/**
 * The workflow code a test's Worker runs, with its interceptors: the bundle the integration setup
 * built once (PERSONA_TEST_WORKFLOW_BUNDLE_DIR), which has the workflow interceptors in it as the
 * image's has, else the source, bundled as the Worker starts with the interceptors' modules.
 */
export function testWorkflowCode(
  interceptors: WorkerInterceptors,
): { interceptors: WorkerInterceptors } & ({ workflowBundle: { codePath: string } } | { workflowsPath: string }) {
  const dir = process.env.PERSONA_TEST_WORKFLOW_BUNDLE_DIR;
  if (!dir) return { workflowsPath: WORKFLOWS_PATH, interceptors };
  return {
    workflowBundle: { codePath: workflowBundlePath(dir, false) },
    interceptors: { ...interceptors, workflowModules: [] },
  };
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const settings = loadSettings();
  const graph = openTestGraph();
  // As in the real api and worker: the request id and the graph's bookmarks ride along with every
  // start and signal.
  const requests = new RequestContext();
  // As in the real api and worker: every payload encrypted, history keys in the graph.
  const { connection, client }: { connection: Connection; client: Client } = await connectTemporal(settings, {
    requestId: () => requests.requestId,
    bookmarks: () => signedBookmarksToCarry(graph, graph.config.payloadKeys),
    payloadCodec: payloadCodecFromConfig(graph.config, graph, 'encode'),
  });
  const nativeConnection = await NativeConnection.connect(nativeConnectionOptions(settings));
  const taskQueue = options.taskQueue ?? `e2e-${randomUUID()}`;
  const workerCodec = payloadCodecFromConfig(
    graph.config,
    graph,
    'all',
    options.workflowCustomers ?? new WorkflowCustomers(),
  ).marking();
  const worker = await Worker.create({
    connection: nativeConnection,
    namespace: settings.TEMPORAL_NAMESPACE,
    taskQueue,
    ...testWorkflowCode(
      withActivityInterceptor(
        workerInterceptors(requests, { graph, keys: graph.config.payloadKeys }),
        openProcessActivityInterceptor(graph, workerCodec),
      ),
    ),
    sinks: openProcessSinks(graph, () => undefined),
    dataConverter: { payloadCodecs: [workerCodec] },
    activities: harnessActivities(graph, client, options),
  });
  const running = worker.run();
  const base = apiDepsFromConfig(graph.config, {
    // TEST_API_LOG=error shows what an unexpected 500 logged (the harness is silent by default).
    logger: createLogger('test-api', process.env.TEST_API_LOG ?? 'silent'),
    readiness: [],
    graph,
    client,
    taskQueue,
    requests,
  });
  // Its own state (write lanes…), built with the limits it has after the options changed them.
  const deps: ApiDeps = withOwnState({
    ...base,
    // Tests send bursts from one token; the limits themselves are tested with their own limiter.
    rateLimiter: options.rateLimiter ?? generousRateLimiter(),
    limits: { ...base.limits, maxBodyBytes: 16 * 1024, waitTimeoutMs: 30_000, ...options.limits },
    ...(options.policy ? { policy: options.policy } : {}),
  });
  const app = createApp(deps);
  // As in the real worker: the event log is numbered; and as in the real api, the read cache hears
  // of other processes' writes through the tail.
  const sequencer = new EventSequencer(
    graph,
    {
      pollMs: 20,
      tickMs: 200,
      batch: 500,
      ...(options.invalidations ? { kafka: { ...options.invalidations, keys: graph.config.payloadKeys } } : {}),
    },
    createLogger('test-sequencer', process.env.TEST_API_LOG ?? 'silent'),
  );
  sequencer.start();
  if (deps.readCache.settings.enabled) deps.invalidations.start();

  return {
    app,
    deps,
    graph,
    client,
    requests,
    taskQueue,
    withDeps: (change) => createApp(changedDeps(deps, change)),
    token: (scope, sub, claims) => signToken(graph.config.jwtSecret, scope, sub, '10m', claims),
    close: async () => {
      await deps.invalidations.stop();
      await sequencer.stop();
      worker.shutdown();
      await running;
      await nativeConnection.close();
      await connection.close();
      await graph.close();
    },
  };
}
