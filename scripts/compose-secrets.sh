#!/usr/bin/env bash
# The secrets docker-compose.prod.yml reads as files (compose `secrets:`), written into one folder:
#   scripts/compose-secrets.sh [folder]        (default: ./secrets beside docker-compose.prod.yml)
# Writes only what is missing, so it is safe to run again; it never rewrites a file. Deleting a
# certificate (.crt) and its key makes a new one (its .pem follows); deleting a key ring or a
# password does NOT rotate it: a new token-keys or payload-keys ring loses every key before it (the
# tokens and histories sealed with them), and the databases keep the password of their first start
# (docs/runbook.md says how to rotate each). Needs openssl. What it writes:
#   kafka-ca.crt/.key            Kafka's private CA (the .key signs: keep it off the host once done)
#   kafka-1..3.pem               each Kafka node's certificate and PKCS#8 key (CN and SAN kafka-N)
#   kafka-admin.pem              the Kafka super user of the setup job (CN kafka-admin), mTLS only
#   temporal-ca.crt/.key         Temporal's private CA, apart: a Kafka certificate is nothing to it
#   kafka-<principal>.password   SCRAM-SHA-512 passwords: persona-api, persona-worker, and the agents
#                                (synapse, chimera, cerebrum write their topics; oracle reads the events)
#   temporal.crt/.key            the Temporal server (frontend and internode; SAN temporal)
#   temporal-persona.crt/.key    Temporal clients, mTLS: Persona (the api, the worker and its jobs),
#   temporal-ui.crt/.key         the UI, and the admin tools (the schema and setup jobs), each its
#   temporal-admin.crt/.key      own CN
#   neo4j-password, neo4j-auth   the graph's password, and Neo4j's own NEO4J_AUTH_FILE (neo4j/<it>)
#   postgres-password            Temporal's PostgreSQL
#   jwt-secret, token-keys, payload-keys, metrics-token   Persona's own (README, Configuration)
# Files are readable by every user (0444) in a folder only its owner may enter (0700): the
# containers run as users of their own, and a bind-mounted secret keeps the host file's mode.
set -Eeuo pipefail
dir=${1:-"$(cd "$(dirname "$0")/.." && pwd)/secrets"}
if [ ! -d "$dir" ]; then
  mkdir -p "$dir"
  chmod 700 "$dir"
fi
cd "$dir"
made=()

random() { openssl rand -base64 "$1" | tr -d '\n/+=' | cut -c1-"$2"; }
secret() { # name value
  [ -e "$1" ] && return 0
  printf '%s\n' "$2" >"$1"
  made+=("$1")
}

# quiet <command…>: openssl's chatter kept out of the way, shown when it fails.
quiet() { "$@" 2>"$dir/.openssl.log" || { cat "$dir/.openssl.log" >&2; exit 1; }; }

# ca <name> <cn>: a private CA. Two, so that a certificate of one service is nothing to the other:
# a Kafka node's key does not open Temporal, nor the reverse.
ca() {
  [ -e "$1.crt" ] && return 0
  rm -f "$1.key"
  quiet openssl req -x509 -newkey rsa:3072 -nodes -keyout "$1.key" -out "$1.crt" -days 3650 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
  made+=("$1.crt" "$1.key")
}

# leaf <ca> <name> <cn> <usage>: <name>.crt and <name>.key (PKCS#8), signed by <ca>, its SAN the CN.
# usage `both` for a server that is also its peers' client (a Kafka node, the Temporal server),
# `client` for a client alone, which then cannot pose as a server.
leaf() {
  local ca=$1 name=$2 cn=$3 usage=serverAuth,clientAuth
  [ "$4" = client ] && usage=clientAuth
  [ -e "$name.crt" ] && return 0
  rm -f "$name.key" "$name.csr"
  quiet openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "/CN=$cn"
  quiet openssl x509 -req -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial -out "$name.crt" \
    -days 397 -extfile <(printf '%s\n' "subjectAltName=DNS:$cn" 'basicConstraints=critical,CA:FALSE' \
      'keyUsage=critical,digitalSignature,keyEncipherment' "extendedKeyUsage=$usage")
  rm -f "$name.csr" "$ca.srl"
  made+=("$name.crt" "$name.key")
}
# pem <name>: the certificate and its key in one file, as Kafka reads a PEM keystore (made again
# when the certificate is newer).
pem() {
  [ -e "$1.pem" ] && [ ! "$1.crt" -nt "$1.pem" ] && return 0
  rm -f "$1.pem"
  cat "$1.crt" "$1.key" >"$1.pem"
  made+=("$1.pem")
}

ca kafka-ca persona-kafka-ca
for n in 1 2 3; do leaf kafka-ca "kafka-$n" "kafka-$n" both && pem "kafka-$n"; done
leaf kafka-ca kafka-admin kafka-admin client && pem kafka-admin
ca temporal-ca persona-temporal-ca
leaf temporal-ca temporal temporal both
leaf temporal-ca temporal-persona persona client
leaf temporal-ca temporal-ui temporal-ui client
leaf temporal-ca temporal-admin temporal-admin client
for principal in persona-api persona-worker synapse chimera cerebrum oracle; do
  secret "kafka-$principal.password" "$(random 48 40)"
done

neo4j=$(cat neo4j-password 2>/dev/null || random 36 32)
secret neo4j-password "$neo4j"
secret neo4j-auth "neo4j/$neo4j"
secret postgres-password "$(random 36 32)"
secret jwt-secret "$(random 64 48)"
secret token-keys "token-1:$(openssl rand -base64 32)"
secret payload-keys "payload-1:$(openssl rand -base64 32)"
secret metrics-token "$(random 36 32)"

rm -f "$dir/.openssl.log"
# Read-only, and readable by the containers' own users: what this run wrote, nothing else.
[ ${#made[@]} -eq 0 ] || chmod 444 -- "${made[@]}"
if [ ${#made[@]} -eq 0 ]; then
  echo "[compose-secrets] $dir: every secret is there, nothing written"
else
  echo "[compose-secrets] $dir: wrote ${made[*]}"
fi
