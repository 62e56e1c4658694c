/**
 * Activities are built by factories closing over the process's dependencies (graph handle,
 * agent clients), so workflows can `import type` them and tests can swap any dependency. The
 * worker registers what `createActivities` returns.
 */
import type { Client } from '@temporalio/client';
import type { ChimeraClient } from '../clients/chimera';
import type { KafkaProducer } from '../clients/kafka';
import type { NotificationSink } from '../clients/notifications';
import type { AccountUpdater, CardDescriber, GatewayRecords, PaymentGateway } from '../clients/paymentGateway';
import type { Graph } from '../graph/graph';
import type { ProfileRules } from '../graph/interactions';
import type { HistoryKeyStore } from '../graph/historyKeys';
import type { RuleTable } from '../payments/networkRules';
import { createAgentActivities } from './agents';
import { createErasureActivities } from './erasure';
import { createEventActivities, type EventSubscriber } from './events';
import { createExpiryActivities } from './expiry';
import { createFraudActivities } from './fraud';
import { createIdentityMergeActivities } from './identityMerge';
import { createInteractionPruneActivities } from './interactionPrune';
import { createEventPruneActivities } from './eventPrune';
import { createKafkaPublisherActivities } from './kafkaPublisher';
import { createOnboardingActivities } from './onboarding';
import { createNotificationActivities } from './notifications';
import { createReconciliationActivities } from './reconciliation';
import { createRecoveryActivities, type ChargePolicy } from './recovery';

export interface ActivityDeps {
  graph: Graph;
  chimera: ChimeraClient;
  gateway: PaymentGateway;
  /** The gateway's records, for the reconciliation (the same HTTP client as `gateway` in the worker). */
  gatewayRecords?: GatewayRecords | undefined;
  /** The processor naming a method's card, and the network-rule table: with both, charges are governed per card. */
  cards?: CardDescriber | undefined;
  /** The networks' account updater (asked after Mastercard's MAC 01). */
  updater?: AccountUpdater | undefined;
  networkRules?: RuleTable | undefined;
  notifications: NotificationSink;
  /** How the recovery's charge treats the gateway: its key memory, the settle window, the client's timeout. */
  chargePolicy?: ChargePolicy | undefined;
  /** Trusted-device threshold, for the cascade's order. */
  trustThreshold: number;
  /** Segment and VIP rules (config/env.ts `profileRules`): a recovery's charge is recorded under them. */
  profileRules: ProfileRules;
  /** Temporal, for activities that find other workflows (a fraud outcome finds running recoveries). */
  temporal: Client;
  /** Events an erasure empties per transaction (PERSONA_ERASURE_BATCH_SIZE). */
  erasureBatchSize?: number;
  /** The idempotent producer, when KAFKA_BROKERS is set (the publisher's activity needs it). */
  kafka?: KafkaProducer | undefined;
  /** The topics the publisher's activity may publish the feed to (the worker: its PERSONA_KAFKA_EVENTS_TOPIC). */
  publishesTo?: ((topic: string) => boolean) | undefined;
  /** The customers' history keys, to seal what the publisher's activity puts on Kafka (graph/eventCipher.ts). */
  eventKeys?: HistoryKeyStore | undefined;
  /** Where the relay delivers and what it signs with (PERSONA_EVENTS_WEBHOOK_URL and _SECRET): this worker's own. */
  events?: EventSubscriber | undefined;
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...createOnboardingActivities(deps),
    ...createAgentActivities(deps),
    ...createRecoveryActivities(deps),
    ...createNotificationActivities(deps),
    ...createExpiryActivities(deps),
    ...createFraudActivities(deps),
    ...createEventActivities(deps),
    ...createErasureActivities(deps),
    ...createInteractionPruneActivities(deps),
    ...createEventPruneActivities(deps),
    ...createKafkaPublisherActivities(deps),
    ...createReconciliationActivities(deps),
    ...createIdentityMergeActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
