/**
 * The identity graph's constraints and indexes (graph/schema.ts applies them: `npm run migrate`).
 *
 * Neo4j 5 Community supports property uniqueness constraints on one property and on several
 * (composite); node-key and existence constraints are Enterprise-only. So (type, value) on
 * DigitalIdentifier is a composite uniqueness constraint, and every constraint below works on
 * Community. Each uniqueness constraint is backed by a range index, so lookups by id,
 * fingerprint and (type, value) need no extra index.
 */

export interface SchemaRule {
  name: string;
  kind: 'constraint' | 'index';
  cypher: string;
}

const NODE_LABELS = [
  'Customer',
  'PaymentMethod',
  'Device',
  'Address',
  'DigitalIdentifier',
  'BehavioralProfile',
  'Event',
  'RelayCheckpoint',
  // A Kafka partition's writer of interactions: the offset its last batch committed with (graph/ingestOffsets.ts).
  'IngestOffset',
  // An interaction's claim (`<customer id>:<sender's id>`, graph/interactions.ts): recorded once.
  'Interaction',
  // A customer's history key (`customer:<id>`), or an onboarding's own (its workflow id): graph/historyKeys.ts.
  'HistoryKey',
  // A customer's open process (`id` = the workflow id, graph/openProcesses.ts).
  'OpenProcess',
  // The event log itself (one node, id `persona`): its epoch, moved on by every restore (backup/).
  'EventLog',
  // A gateway charge whose recovery was still running when the reconciliation saw it (`id` = the
  // payment id, graph/reconciliation.ts): looked at again by every run until it is settled.
  'ReconciliationPending',
  // The charge ledger (graph/chargeLedger.ts): a failed payment's recovery (`id` = the payment id)
  // and each charge it attempted (`id` = the idempotency key), kept whatever happens to the wallet.
  'Recovery',
  'ChargeAttempt',
  // The event log's sequencer (one node, id `persona`): the last number it gave (graph/sequencer.ts).
  'EventSequencer',
] as const;

const snake = (label: string): string => label.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();

export const SCHEMA: SchemaRule[] = [
  ...NODE_LABELS.map((label) => ({
    name: `${snake(label)}_id_unique`,
    kind: 'constraint' as const,
    cypher: `CREATE CONSTRAINT ${snake(label)}_id_unique IF NOT EXISTS FOR (n:${label}) REQUIRE n.id IS UNIQUE`,
  })),
  // A card's charges as the networks count them (graph/cardHistory.ts), one node per fingerprint.
  {
    name: 'card_identity_fingerprint_unique',
    kind: 'constraint',
    cypher:
      'CREATE CONSTRAINT card_identity_fingerprint_unique IF NOT EXISTS ' +
      'FOR (k:CardIdentity) REQUIRE k.fingerprint IS UNIQUE',
  },
  // A blocking key of a person, hashed (graph/matchKeys.ts): a sign-up's keys are sought by value.
  {
    name: 'match_key_key_unique',
    kind: 'constraint',
    cypher: 'CREATE CONSTRAINT match_key_key_unique IF NOT EXISTS FOR (k:MatchKey) REQUIRE k.key IS UNIQUE',
  },
  {
    name: 'device_fingerprint_unique',
    kind: 'constraint',
    cypher: 'CREATE CONSTRAINT device_fingerprint_unique IF NOT EXISTS FOR (d:Device) REQUIRE d.fingerprint IS UNIQUE',
  },
  {
    name: 'digital_identifier_type_value_unique',
    kind: 'constraint',
    cypher:
      'CREATE CONSTRAINT digital_identifier_type_value_unique IF NOT EXISTS FOR (d:DigitalIdentifier) ' +
      'REQUIRE (d.type, d.value) IS UNIQUE',
  },
  // A fact written with an idempotency key (an onboarding, a notification, a fraud outcome) is
  // recorded once (graph/facts.ts); a fact without one is keyed by its type and event id.
  {
    name: 'fact_key_unique',
    kind: 'constraint',
    cypher: 'CREATE CONSTRAINT fact_key_unique IF NOT EXISTS FOR (f:Fact) REQUIRE f.key IS UNIQUE',
  },
  // A customer's facts of one type, newest first (fraud outcomes, merges, contests): one seek.
  {
    name: 'fact_customer_type_at',
    kind: 'index',
    cypher: 'CREATE INDEX fact_customer_type_at IF NOT EXISTS FOR (f:Fact) ON (f.customer_id, f.type, f.at)',
  },
  // The facts that name another party: the possible matches that name a customer, the reversals
  // of an outcome (graph/matchEvidence.ts, graph/fraud.ts).
  {
    name: 'fact_about_type_at',
    kind: 'index',
    cypher: 'CREATE INDEX fact_about_type_at IF NOT EXISTS FOR (f:Fact) ON (f.about, f.type, f.at)',
  },
  // The reconciliation pages through a window's recoveries in time order (graph/reconciliation.ts).
  {
    name: 'fact_type_at',
    kind: 'index',
    cypher: 'CREATE INDEX fact_type_at IF NOT EXISTS FOR (f:Fact) ON (f.type, f.at)',
  },
  // The prune finds the transient events (not in a customer's history) consumers have passed,
  // oldest first: only they have the property, so the index holds nothing else (graph/eventPrune.ts).
  {
    name: 'event_transient_occurred_at',
    kind: 'index',
    cypher: 'CREATE INDEX event_transient_occurred_at IF NOT EXISTS FOR (e:Event) ON (e.transient, e.occurred_at)',
  },
  // The expiry scan pages through active cards in (expiry year, month, id) order straight off
  // this index: each page is one range seek, however large the graph.
  {
    name: 'payment_method_expiry_scan',
    kind: 'index',
    cypher:
      'CREATE INDEX payment_method_expiry_scan IF NOT EXISTS FOR (p:PaymentMethod) ' +
      'ON (p.status, p.expiry_year, p.expiry_month, p.id)',
  },
  // A notification is claimed under its key before it is sent, so it goes out once.
  {
    name: 'notification_key_unique',
    kind: 'constraint',
    cypher: 'CREATE CONSTRAINT notification_key_unique IF NOT EXISTS FOR (n:Notification) REQUIRE n.key IS UNIQUE',
  },
  // A data migration (below) runs once: its name is recorded when it is done.
  {
    name: 'migration_name_unique',
    kind: 'constraint',
    cypher: 'CREATE CONSTRAINT migration_name_unique IF NOT EXISTS FOR (m:Migration) REQUIRE m.name IS UNIQUE',
  },
  // The graph's own settings (the schema version, the reporting currency): one node per name.
  {
    name: 'graph_setting_name_unique',
    kind: 'constraint',
    cypher: 'CREATE CONSTRAINT graph_setting_name_unique IF NOT EXISTS FOR (s:GraphSetting) REQUIRE s.name IS UNIQUE',
  },
  // Each new onboarding key removes expired ones (graph/historyKeys.ts): found by kind and age.
  {
    name: 'history_key_kind_created_at',
    kind: 'index',
    cypher: 'CREATE INDEX history_key_kind_created_at IF NOT EXISTS FOR (k:HistoryKey) ON (k.kind, k.created_at)',
  },
  // A customer's history (newest first) and the change feed read events by customer and time.
  {
    name: 'event_customer_occurred_at',
    kind: 'index',
    cypher: 'CREATE INDEX event_customer_occurred_at IF NOT EXISTS FOR (e:Event) ON (e.customer_id, e.occurred_at)',
  },
  // A customer's history reads the device-level events (a shared device's trust change) of its
  // devices by device and time.
  {
    name: 'event_device_occurred_at',
    kind: 'index',
    cypher: 'CREATE INDEX event_device_occurred_at IF NOT EXISTS FOR (e:Event) ON (e.device_id, e.occurred_at)',
  },
  // The event log in commit order (graph/sequencer.ts): a reader reads a range of numbers, and no
  // number is given twice.
  {
    name: 'event_log_seq_unique',
    kind: 'constraint',
    cypher: 'CREATE CONSTRAINT event_log_seq_unique IF NOT EXISTS FOR (e:Event) REQUIRE e.log_seq IS UNIQUE',
  },
  {
    name: 'event_occurred_at',
    kind: 'index',
    cypher: 'CREATE INDEX event_occurred_at IF NOT EXISTS FOR (e:Event) ON (e.occurred_at)',
  },
  // A merge points the tombstones of earlier merges at its survivor, an erasure of a survivor finds
  // the records merged into it (graph/identityMerge.ts, graph/erasure.ts): a seek, not a scan of customers.
  {
    name: 'customer_merged_into',
    kind: 'index',
    cypher: 'CREATE INDEX customer_merged_into IF NOT EXISTS FOR (c:Customer) ON (c.merged_into)',
  },
  // A retried erasure finds the merged records its first attempt erased already (graph/erasure.ts).
  {
    name: 'customer_erased_with',
    kind: 'index',
    cypher: 'CREATE INDEX customer_erased_with IF NOT EXISTS FOR (c:Customer) ON (c.erased_with)',
  },
  // A customer's possible matches (graph/matchEvidence.ts): the customers with the same card (the
  // processor's fingerprint) or the same address (its normalised key), each a seek from one of the
  // customer's own.
  {
    name: 'payment_method_card_fingerprint',
    kind: 'index',
    cypher: 'CREATE INDEX payment_method_card_fingerprint IF NOT EXISTS FOR (p:PaymentMethod) ON (p.card_fingerprint)',
  },
  {
    name: 'address_match_key',
    kind: 'index',
    cypher: 'CREATE INDEX address_match_key IF NOT EXISTS FOR (a:Address) ON (a.match_key)',
  },
  // The charge ledger: an erasure or a merge finds a customer's recoveries and attempts, and the
  // per-method cap counts a method's recent attempts, each with one seek.
  {
    name: 'recovery_customer',
    kind: 'index',
    cypher: 'CREATE INDEX recovery_customer IF NOT EXISTS FOR (r:Recovery) ON (r.customer_id)',
  },
  // The reconciliation's stranded pass pages through the recoveries still recovering, by id.
  {
    name: 'recovery_state_id',
    kind: 'index',
    cypher: 'CREATE INDEX recovery_state_id IF NOT EXISTS FOR (r:Recovery) ON (r.state, r.id)',
  },
  {
    name: 'charge_attempt_customer',
    kind: 'index',
    cypher: 'CREATE INDEX charge_attempt_customer IF NOT EXISTS FOR (a:ChargeAttempt) ON (a.customer_id)',
  },
  {
    name: 'charge_attempt_method_created',
    kind: 'index',
    cypher:
      'CREATE INDEX charge_attempt_method_created IF NOT EXISTS FOR (a:ChargeAttempt) ' +
      'ON (a.payment_method_id, a.created_at)',
  },
  // The daily prune deletes interaction claims older than the retention, oldest first, one range
  // seek per batch (graph/interactions.ts `pruneInteractionClaims`).
  {
    name: 'interaction_recorded_at',
    kind: 'index',
    cypher: 'CREATE INDEX interaction_recorded_at IF NOT EXISTS FOR (i:Interaction) ON (i.recorded_at)',
  },
];

/** Rules an earlier release created and this one no longer wants: dropped if present. */
export const RETIRED_SCHEMA: SchemaRule[] = [
  // Version 1 kept idempotency keys and possible matches on events; facts keep them now (graph/facts.ts).
  {
    name: 'event_idempotency_key_unique',
    kind: 'constraint',
    cypher:
      'CREATE CONSTRAINT event_idempotency_key_unique IF NOT EXISTS FOR (e:Event) REQUIRE e.idempotency_key IS UNIQUE',
  },
  {
    name: 'event_matched_customer_occurred_at',
    kind: 'index',
    cypher:
      'CREATE INDEX event_matched_customer_occurred_at IF NOT EXISTS FOR (e:Event) ' +
      'ON (e.matched_customer_id, e.occurred_at)',
  },
];
