#!/usr/bin/env bash
# The secrets docker-compose.prod.yml reads as files (compose `secrets:`), written into one folder:
#   scripts/compose-secrets.sh [folder]        (default: ./secrets beside docker-compose.prod.yml)
# Writes only what is missing, so it is safe to run again (a lost file is made anew; delete a file
# to rotate it). Needs openssl. What it writes:
#   ca.crt, ca.key               a private CA for this deployment (ca.key signs; keep it off the host)
#   kafka-1..3.pem               each Kafka node's certificate and PKCS#8 key (CN and SAN kafka-N)
#   kafka-admin.pem              the Kafka super user of the setup job (CN kafka-admin), mTLS only
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
mkdir -p "$dir"
chmod 700 "$dir"
cd "$dir"
made=()

random() { openssl rand -base64 "$1" | tr -d '\n/+=' | cut -c1-"$2"; }
secret() { # name value
  [ -e "$1" ] && return 0
  printf '%s\n' "$2" >"$1"
  made+=("$1")
}

if [ ! -e ca.crt ]; then
  openssl req -x509 -newkey rsa:3072 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=persona-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  made+=(ca.crt ca.key)
fi

# leaf <name> <cn> [dns…]: <name>.crt and <name>.key (PKCS#8), signed by the CA, for TLS either way
# (a Kafka node and the Temporal server are also clients of their peers).
leaf() {
  local name=$1 cn=$2
  shift 2
  [ -e "$name.crt" ] && return 0
  local san="DNS:$cn"
  for d in "$@"; do san="$san,DNS:$d"; done
  openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "/CN=$cn" 2>/dev/null
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$name.crt" -days 397 \
    -extfile <(printf '%s\n' "subjectAltName=$san" 'basicConstraints=critical,CA:FALSE' \
      'keyUsage=critical,digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth,clientAuth') \
    2>/dev/null
  rm -f "$name.csr"
  made+=("$name.crt" "$name.key")
}
# pem <name>: the certificate and its key in one file, as Kafka reads a PEM keystore.
pem() {
  [ -e "$1.pem" ] && return 0
  cat "$1.crt" "$1.key" >"$1.pem"
  made+=("$1.pem")
}

for n in 1 2 3; do leaf "kafka-$n" "kafka-$n" && pem "kafka-$n"; done
leaf kafka-admin kafka-admin && pem kafka-admin
leaf temporal temporal
leaf temporal-persona persona
leaf temporal-ui temporal-ui
leaf temporal-admin temporal-admin
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

rm -f ca.srl
chmod 444 -- * 2>/dev/null || true
if [ ${#made[@]} -eq 0 ]; then
  echo "[compose-secrets] $dir: every secret is there, nothing written"
else
  echo "[compose-secrets] $dir: wrote ${made[*]}"
fi
