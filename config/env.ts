/**
 * Persona's configuration: every address, port and secret comes from the environment, parsed
 * once at start-up with zod. A wrong value stops the process with a message that names the
 * variable; nothing runs on a half-valid configuration.
 *
 * Each area's variables, defaults and rules live in a module of their own (config/env<Area>.ts:
 * Neo4j, Temporal, the worker, keys and tokens, the api, profiles, events, payments, lifecycle,
 * Kafka, integrations, the local stack). This module composes them into one schema, checks the
 * rules across variables, derives the values every process needs and resolves the secrets; every
 * importer imports from here.
 */
import path from 'node:path';
import { z } from 'zod';
import { edgeShape, listenShape, metricsProductionIssues, readCacheProblem, requestsShape } from './envApi';
import { ConfigError, coreShape } from './envCore';
import { eventsProductionIssues, eventsShape, retentionShape } from './envEvents';
import { secretFilesShape, withSecretFiles } from './envFiles';
import { integrationProductionIssues, integrationsShape, notificationProductionIssues } from './envIntegrations';
import { kafkaBrokerList, kafkaSecurityIssues, kafkaShape } from './envKafka';
import { lifecycleDeadlinesShape, lifecycleShape } from './envLifecycle';
import { neo4jBoltAddress, neo4jProductionIssues, neo4jShape } from './envNeo4j';
import { gatewayProductionIssues, paymentsShape } from './envPayments';
import { profileShape, vipLtvMinor, vipLtvProblem } from './envProfiles';
import { historyRetentionShape, keysShape, resolveSecrets, tokenProductionIssues } from './envSecurity';
import { stackShape } from './envStack';
import { temporalSecurityIssues, temporalShape } from './envTemporal';
import { workerShape } from './envWorker';
import type { KeyRing } from './keyRing';

export { API_HEAP_BESIDES_CACHE_MB, API_HEAP_MB, API_NODE_ARGS } from './envApi';
export { buildIdMismatch, recordedBuildId } from './buildId';
export { ConfigError, repoRoot } from './envCore';
export { erasureWaitDeadline, fraudReviewDue } from './envLifecycle';
export { FEED_LAG_MARGIN_MS, NEO4J_LOCAL_PASSWORD, WRITE_TX_TIMEOUT_MS } from './envNeo4j';
export { attentionDeadline, chargePolicy, chargeRetryFor, settleFor } from './envPayments';
export { profileRules } from './envProfiles';
export { localJwtSecretPath, localKafkaSecretsDir, localPayloadKeysPath, localTokenKeysPath } from './envStack';
export { temporalTlsOn } from './envTemporal';
export { WORK_KINDS, workerDeploymentVersion, workerSlots, type WorkerSlots, type WorkKind } from './envWorker';
export { kafkaSecurityIssues, temporalSecurityIssues };

/**
 * Every variable, area by area, in the order they have always been listed (a configuration wrong
 * in several variables is refused with its issues in this order).
 */
export const envSchema = z.object({
  ...coreShape,
  ...neo4jShape,
  ...temporalShape,
  ...listenShape,
  ...workerShape,
  ...keysShape,
  ...requestsShape,
  ...edgeShape,
  ...profileShape,
  ...retentionShape,
  ...paymentsShape,
  ...lifecycleShape,
  ...eventsShape,
  ...kafkaShape,
  ...integrationsShape,
  ...stackShape,
  ...lifecycleDeadlinesShape,
  ...historyRetentionShape,
  ...secretFilesShape,
});

export type Env = z.infer<typeof envSchema>;

/**
 * The rules across variables: Kafka's and Temporal's TLS and authentication always; in production
 * also no consent codes in the logs, webhooks over https and signed, tokens that name their issuer
 * and audience, a Neo4j password of the deployment's own, the gateway over https, and a token on
 * /metrics.
 */
const withProductionRules = envSchema.superRefine((env, ctx) => {
  const production =
    env.NODE_ENV === 'production'
      ? [
          ...notificationProductionIssues(env),
          ...integrationProductionIssues(env),
          ...eventsProductionIssues(env),
          ...tokenProductionIssues(env),
          ...neo4jProductionIssues(env),
          ...gatewayProductionIssues(env),
          ...metricsProductionIssues(env),
        ]
      : [];
  for (const issue of [...kafkaSecurityIssues(env), ...temporalSecurityIssues(env), ...production])
    ctx.addIssue({ code: 'custom', ...issue });
});

/** The parsed environment with the derived values every process needs. */
export interface Settings extends Omit<
  Env,
  | 'PERSONA_TOKEN_KEYS'
  | 'PERSONA_JWT_SECRET'
  | 'PERSONA_PAYLOAD_KEYS'
  | 'TEMPORAL_TEST_SERVER_PATH'
  | 'PERSONA_CODEC_CORS_ORIGIN'
  | 'KAFKA_SASL_PASSWORD'
  | 'TEMPORAL_API_KEY'
  | 'PERSONA_BACKUP_DIR'
> {
  /** TEMPORAL_API_KEY, behind a function: a settings object logged or serialised never carries it. */
  temporalApiKey?: () => string;
  /** Resolved: PERSONA_BACKUP_DIR, or `backups/` in the stack's folder. */
  PERSONA_BACKUP_DIR: string;
  /** KAFKA_SASL_PASSWORD, behind a function: a settings object logged or serialised never carries it. */
  kafkaSaslPassword?: () => string;
  /** Resolved: the local UI's origin by default, none in production. */
  PERSONA_CODEC_CORS_ORIGIN: string;
  temporalTestServerPath: string;
  /** PERSONA_VIP_LTV in minor units of PERSONA_REPORTING_CURRENCY. */
  vipLtvMinor: number;
  neo4jBoltHost: string;
  neo4jBoltPort: number;
  /** KAFKA_BROKERS split; empty when Kafka is off. */
  kafkaBrokers: string[];
}

/** Settings plus the secrets: what the api and worker run on. */
export interface Config extends Settings {
  /** The payment-token keys (PERSONA_TOKEN_KEYS). */
  tokenKeys: KeyRing;
  /** The HS256 secret for JWTs (unused when PERSONA_JWKS_URL is set). */
  jwtSecret: string;
  /** The payload codec's service keys (PERSONA_PAYLOAD_KEYS). */
  payloadKeys: KeyRing;
}

/** Parses the environment without secrets (the stack CLI runs on this). Throws ConfigError. */
export function loadSettings(
  env: NodeJS.ProcessEnv = process.env,
): Settings & { tokenKeysFromEnv?: string; jwtSecretFromEnv?: string; payloadKeysFromEnv?: string } {
  // Secrets given as files (X_FILE) first: the rules then see their values.
  const files = withSecretFiles(env);
  if (files.issues.length > 0) throw new ConfigError(files.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  const parsed = withProductionRules.safeParse(files.env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const {
    PERSONA_TOKEN_KEYS,
    PERSONA_JWT_SECRET,
    PERSONA_PAYLOAD_KEYS,
    TEMPORAL_TEST_SERVER_PATH,
    KAFKA_SASL_PASSWORD,
    TEMPORAL_API_KEY,
    ...values
  } = parsed.data;
  const problem = vipLtvProblem(values) ?? readCacheProblem(values);
  if (problem) throw new ConfigError([problem]);
  const stackDir = path.resolve(values.PERSONA_STACK_DIR);
  return {
    ...values,
    PERSONA_STACK_DIR: stackDir,
    PERSONA_BACKUP_DIR: path.resolve(values.PERSONA_BACKUP_DIR ?? path.join(stackDir, 'backups')),
    PERSONA_CODEC_CORS_ORIGIN:
      values.PERSONA_CODEC_CORS_ORIGIN ?? (values.NODE_ENV === 'production' ? '' : 'http://localhost:8233'),
    temporalTestServerPath: TEMPORAL_TEST_SERVER_PATH ?? path.join(stackDir, 'venv', 'bin', 'temporal-test-server'),
    vipLtvMinor: vipLtvMinor(values),
    ...neo4jBoltAddress(values.NEO4J_URI),
    kafkaBrokers: kafkaBrokerList(values.KAFKA_BROKERS),
    ...(KAFKA_SASL_PASSWORD ? { kafkaSaslPassword: () => KAFKA_SASL_PASSWORD } : {}),
    ...(TEMPORAL_API_KEY ? { temporalApiKey: () => TEMPORAL_API_KEY } : {}),
    ...(PERSONA_TOKEN_KEYS ? { tokenKeysFromEnv: PERSONA_TOKEN_KEYS } : {}),
    ...(PERSONA_JWT_SECRET ? { jwtSecretFromEnv: PERSONA_JWT_SECRET } : {}),
    ...(PERSONA_PAYLOAD_KEYS ? { payloadKeysFromEnv: PERSONA_PAYLOAD_KEYS } : {}),
  };
}

/** Parses the environment and resolves the key rings and secrets. Throws ConfigError naming every wrong variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const { tokenKeysFromEnv, jwtSecretFromEnv, payloadKeysFromEnv, ...settings } = loadSettings(env);
  return { ...settings, ...resolveSecrets(settings, { tokenKeysFromEnv, jwtSecretFromEnv, payloadKeysFromEnv }) };
}
