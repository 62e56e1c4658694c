#!/usr/bin/env bash
# Kafka's principals and their ACLs, for docker-compose.prod.yml's kafka-setup job (the apache/kafka
# image): signed in as the super user kafka-admin, by its certificate, on the nodes' INTERNAL
# listener. Every step may run again (a credential set anew, an ACL added twice is one), so the job
# runs at every `up`. Nothing is allowed without an ACL (allow.everyone.if.no.acl.found=false):
#   persona-worker  creates Persona's topics, writes the events and the cache invalidations
#   persona-api     creates Persona's topics, reads the agents' topics in its consumer group and the
#                   invalidations in its own groups (persona-cache-*), writes dead letters
#   synapse, chimera, cerebrum   each writes its own topic (payment failures, fraud and routing outcomes)
#   oracle          reads the events in its groups (oracle-*)
# The topic names are config/envKafka.ts's defaults; PERSONA_KAFKA_*_TOPIC here moves them with Persona's.
set -Eeuo pipefail
bin=${KAFKA_BIN:-/opt/kafka/bin}
secrets=${SECRETS_DIR:-/run/secrets}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%s\n' security.protocol=SSL ssl.keystore.type=PEM "ssl.keystore.location=$secrets/kafka-admin.pem" \
  ssl.truststore.type=PEM "ssl.truststore.location=$secrets/kafka-ca.crt" >"$work/admin.properties"
nodes=${KAFKA_SETUP_BOOTSTRAP:-kafka-1:19093,kafka-2:19093,kafka-3:19093}
at=(--bootstrap-server "$nodes" --command-config "$work/admin.properties")

events=${PERSONA_KAFKA_EVENTS_TOPIC:-persona.events.v1}
invalidations=${PERSONA_KAFKA_INVALIDATIONS_TOPIC:-persona.invalidations.v1}
dead_letters=${PERSONA_KAFKA_DEAD_LETTER_TOPIC:-persona.dead-letters.v1}
failures=${PERSONA_KAFKA_PAYMENT_FAILURES_TOPIC:-synapse.payment-failures.v1}
fraud=${PERSONA_KAFKA_FRAUD_OUTCOMES_TOPIC:-chimera.fraud-outcomes.v1}
routing=${PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC:-cerebrum.routing-outcomes.v1}
group=${PERSONA_KAFKA_CONSUMER_GROUP:-persona-api}
persona_topics=("$events" "$invalidations" "$dead_letters" "$failures" "$fraud" "$routing")

# Each principal's SCRAM-SHA-512 credential, from its password file (a file, so that the password
# is on no command line). In a file the value has no brackets: kafka-configs.sh strips them from
# --add-config only, and refuses them here (printing the line, password and all).
for principal in persona-api persona-worker synapse chimera cerebrum oracle; do
  printf 'SCRAM-SHA-512=iterations=8192,password=%s\n' "$(cat "$secrets/kafka-$principal.password")" >"$work/scram"
  "$bin/kafka-configs.sh" "${at[@]}" --alter --entity-type users --entity-name "$principal" \
    --add-config-file "$work/scram" >/dev/null
  echo "[kafka-setup] credential of $principal set"
done
rm -f "$work/scram"

allow() { # principal, then kafka-acls.sh's operations and resources
  local principal=$1
  shift
  "$bin/kafka-acls.sh" "${at[@]}" --add --force --allow-principal "User:$principal" "$@" >/dev/null
}
topics() { for t in "$@"; do printf -- '--topic\n%s\n' "$t"; done; }
mapfile -t all < <(topics "${persona_topics[@]}")

for p in persona-worker persona-api; do
  allow "$p" --operation Create --operation Describe --operation DescribeConfigs "${all[@]}"
done
allow persona-worker --operation Write $(topics "$events" "$invalidations")
allow persona-api --operation Read $(topics "$failures" "$fraud" "$routing" "$invalidations")
allow persona-api --operation Read --group "$group"
allow persona-api --operation Read --group persona-cache- --resource-pattern-type prefixed
allow persona-api --operation Write --topic "$dead_letters"
allow synapse --operation Write --operation Describe --topic "$failures"
allow chimera --operation Write --operation Describe --topic "$fraud"
allow cerebrum --operation Write --operation Describe --topic "$routing"
allow oracle --operation Read --operation Describe --topic "$events"
allow oracle --operation Read --group oracle- --resource-pattern-type prefixed
echo "[kafka-setup] ACLs of persona-worker, persona-api, synapse, chimera, cerebrum and oracle in place"
