#!/usr/bin/env bash
# Installs, upgrades and rolls back docker-compose.prod.yml, each worker build beside the others
# (docs/deployment.md#upgrades-and-rollbacks):
#   scripts/compose-deploy.sh up <version>   install, upgrade or roll back to the image $PERSONA_IMAGE:<version>
#   scripts/compose-deploy.sh reap [--grace-minutes <n>] [--dry-run]
#                                            stop the older worker builds that nothing needs any more
#   scripts/compose-deploy.sh status         the Worker Deployment as Temporal sees it, and the builds running
#   scripts/compose-deploy.sh start <version> [--recreate]
#                                            a build's workers started (again) without promoting them
# `up` is the procedure the chart and `npm run deploy:*` follow too:
#   1. the release at <version>: the graph's migration, the shared services and the api;
#   2. the new build's workers beside the running ones, a compose project of their own
#      (<project>-worker-<version>, from the same file);
#   3. promote their version (it waits until they have polled every task queue);
#   4. stop an earlier project of the same build (a release that changed no workflow code);
#   5. reap: an older build keeps running until Temporal reports its version drained (or never
#      current and nothing open on it), past a grace period; run `reap` again later, or from cron.
# A rollback is `up` of the earlier version: its workers still run (or start again), it is promoted,
# and the newer build keeps its workers until the workflows pinned to it have finished.
# Needs Docker with the compose plugin; the image must be built or pulled (docker build -t persona:<version> .).
set -Eeuo pipefail
cd "$(dirname "$0")/.."

file=docker-compose.prod.yml
project=${PERSONA_COMPOSE_PROJECT:-persona-prod}
export PERSONA_IMAGE=${PERSONA_IMAGE:-persona}
# Its own network: another deployment on this host (its own project) never answers to `api` here.
export PERSONA_NETWORK=${PERSONA_NETWORK:-$project}
export PERSONA_RELEASE=$project
# The shared network: containers get addresses from the lower half; the balancer's fixed one
# (10.213.0.250, docker-compose.prod.yml's lb and PERSONA_TRUSTED_PROXIES) is outside it.
subnet=10.213.0.0/24
ip_range=10.213.0.0/25
# The worker builds' projects: <project>-worker-<version, lower case, dots as dashes>.
worker_prefix="$project-worker-"
# How long new workers may take to become ready (their /readyz) before the upgrade stops, unpromoted.
wait_seconds=${PERSONA_WORKER_WAIT_SECONDS:-300}

say() { echo "[compose-deploy] $*" >&2; }
die() {
  echo "compose-deploy: $*" >&2
  exit 1
}
usage() {
  die "usage: compose-deploy.sh up <version> | start <version> [--recreate] | reap [--grace-minutes <n>] [--dry-run] | status"
}

compose() { docker compose -p "$project" -f "$file" "$@"; }
# A worker build's project: its own PERSONA_VERSION (the interpolation needs one even to stop it).
workers() {
  local name=$1 version=$2
  shift 2
  PERSONA_VERSION=$version docker compose -p "$name" -f "$file" --profile worker "$@"
}
version_re='^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$'
build_id_re='^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$'
# Labels are anyone's to set (an image's LABEL, a container started by hand): what the script acts on
# must look like what it made. A worker build's project, never the release's nor another's.
is_worker_project() { [[ $1 =~ ^${worker_prefix}[a-z0-9][a-z0-9_-]*$ ]]; }

# Every worker container of this deployment, one tab-separated line each: project, version, build
# id, created, state; rows whose project or version this script could not have made are left out.
worker_containers() {
  local p v b c st
  docker ps -a --filter label=persona.role=worker --filter "label=persona.release=$project" \
    --format '{{.Label "com.docker.compose.project"}}	{{.Label "persona.version"}}	{{.Label "persona.build-id"}}	{{.CreatedAt}}	{{.State}}' |
    while IFS=$'\t' read -r p v b c st; do
      if is_worker_project "$p" && [[ $v =~ $version_re ]]; then
        printf '%s\t%s\t%s\t%s\t%s\n' "$p" "$v" "$b" "$c" "$st"
      else
        say "ignoring a worker container labelled with project '${p//[^[:print:]]/?}' and version '${v//[^[:print:]]/?}'"
      fi
    done
}
version_of() { worker_containers | awk -F'\t' -v p="$1" '$1 == p { print $2; exit }'; }
# The version the release's api runs: the build the reaper never stops. Every api must agree.
release_version() {
  local versions
  versions=$(docker ps -a --filter "label=com.docker.compose.project=$project" \
    --filter label=com.docker.compose.service=api --format '{{.Label "persona.version"}}' | sort -u)
  [ -z "$versions" ] && return
  [[ $versions =~ $version_re ]] || die "the apis of $project do not agree on one version: ${versions//[^[:print:]]/ }"
  printf '%s\n' "$versions"
}

# The shared network: made by this script, labelled with the release, on the addresses the balancer's
# fixed one (and PERSONA_TRUSTED_PROXIES) assume; one made otherwise is refused, not joined.
ensure_network() {
  local seen
  if seen=$(docker network inspect -f '{{index .Labels "persona.release"}} {{range .IPAM.Config}}{{.Subnet}} {{.IPRange}}{{end}}' \
    "$PERSONA_NETWORK" 2>/dev/null); then
    [ "$seen" = "$project $subnet $ip_range" ] ||
      die "the network $PERSONA_NETWORK exists but is not this release's ($seen): expected the label persona.release=$project, subnet $subnet and range $ip_range"
    return
  fi
  say "creating the network $PERSONA_NETWORK ($subnet)"
  docker network create --driver bridge --label "persona.release=$project" --subnet "$subnet" --ip-range "$ip_range" \
    "$PERSONA_NETWORK" >/dev/null
}

# Stops the worker builds the reaper (scripts/deploy.ts reap --listed) says may go.
reap() {
  local grace=60 dry=()
  while [ $# -gt 0 ]; do
    case $1 in
      --grace-minutes) grace=${2:?--grace-minutes needs a number} && shift 2 ;;
      --dry-run) dry=(--dry-run) && shift ;;
      *) usage ;;
    esac
  done
  local release listed stops name
  release=${PERSONA_VERSION:-$(release_version)}
  [ -n "$release" ] || die "no api of $project runs: 'compose-deploy.sh up <version>' first"
  [[ $release =~ $version_re ]] || die "PERSONA_VERSION: not an image tag: '$release'"
  listed=$(worker_containers | awk -F'\t' '{ print $1 "\t" $3 "\t" $4 }')
  if [ -z "$listed" ]; then
    say "reap: no worker build runs"
    return
  fi
  # The decision is Temporal's answer read by the reaper in the release's image; its log goes to stderr.
  stops=$(printf '%s\n' "$listed" |
    PERSONA_VERSION=$release compose run --rm --no-deps -T deploy reap --listed --grace-minutes "$grace" "${dry[@]}")
  while read -r -u 3 verb name; do
    [ -n "$verb" ] || continue
    # Only a project it was given: the answer comes from a container.
    if [ "$verb" != stop ] || ! is_worker_project "$name" || ! printf '%s\n' "$listed" | cut -f1 | grep -qxF "$name"; then
      say "reap: ignoring the answer '${verb//[^[:print:]]/?} ${name//[^[:print:]]/?}'"
      continue
    fi
    say "stopping $name (version $(version_of "$name"))"
    workers "$name" "$(version_of "$name")" down </dev/null
  done 3<<<"$stops"
}

# Sets build_id and name for the image of <version>: its build id and its worker project.
resolve_build() {
  local version=$1 image="$PERSONA_IMAGE:$1" running
  # Read from the image as it is here: nothing pulled, no network, nothing written.
  build_id=$(docker run --rm --pull never --network none --read-only --entrypoint cat "$image" BUILD_ID) ||
    die "cannot read the build id of $image: build it (docker build -t $image .) or pull it"
  [[ $build_id =~ $build_id_re ]] || die "$image: BUILD_ID holds no build id: '${build_id//[^[:print:]]/?}'"
  name="$worker_prefix$(printf '%s' "$version" | tr 'A-Z.' 'a-z-')"
  running=$(version_of "$name")
  [ -z "$running" ] || [ "$running" = "$version" ] ||
    die "the project $name runs version $running, which is not $version: choose a version that differs in more than case and dots"
  export PERSONA_VERSION=$version PERSONA_BUILD_ID=$build_id
}

# `start <version> [--recreate]`: a build's workers, started (again) beside the others and promoted
# to nothing: a draining build whose workers were stopped too soon (PersonaPinnedWorkStalled), or
# restarted onto renewed certificates (--recreate).
start() {
  local version=${1:-} recreate=()
  [ $# -ge 1 ] && [ $# -le 2 ] && [[ $version =~ $version_re ]] || usage
  if [ $# -eq 2 ]; then [ "$2" = --recreate ] && recreate=(--force-recreate) || usage; fi
  local build_id name
  resolve_build "$version"
  ensure_network
  say "the workers of build $build_id: project $name (waits until they are ready; promotes nothing)"
  workers "$name" "$version" up -d --wait --wait-timeout "$wait_seconds" --no-deps "${recreate[@]}" worker </dev/null
}

up() {
  local version=${1:-}
  [ $# -eq 1 ] && [[ $version =~ $version_re ]] || usage
  local build_id name
  resolve_build "$version"

  ensure_network
  say "1/5 $project at $version (build $build_id): the graph's migration, the shared services, the api"
  compose up -d </dev/null
  say "2/5 the workers of build $build_id beside the running ones: project $name (waits until they are ready)"
  workers "$name" "$version" up -d --wait --wait-timeout "$wait_seconds" --no-deps worker </dev/null
  say "3/5 promoting $build_id (it waits until the workers have polled)"
  compose run --rm --no-deps deploy promote "$build_id" </dev/null
  say "4/5 earlier projects of the same build"
  local same
  while IFS= read -r same; do
    [ -n "$same" ] || continue
    say "stopping $same (version $(version_of "$same")): build $build_id runs in $name"
    workers "$same" "$(version_of "$same")" down </dev/null
  done < <(worker_containers | awk -F'\t' -v b="$build_id" -v n="$name" '$3 == b && $1 != n { print $1 }' | sort -u)
  say "5/5 older builds: each stays until Temporal says nothing needs it"
  reap
  say "done: $version is the release; 'compose-deploy.sh status' shows the builds, 'reap' stops drained ones"
}

status() {
  local release
  release=$(release_version)
  [ -n "$release" ] || die "no api of $project runs: 'compose-deploy.sh up <version>' first"
  echo "release: $release"
  PERSONA_VERSION=$release compose run --rm --no-deps -T deploy status </dev/null
  echo "worker containers (project, version, build id, created, state):"
  worker_containers
}

command=${1:-}
[ $# -gt 0 ] && shift
# One at a time per release: a reap from cron never runs in the middle of an upgrade.
exec 9>"${TMPDIR:-/tmp}/persona-compose-deploy-$project.lock"
flock -n 9 || die "another compose-deploy.sh runs for $project (${TMPDIR:-/tmp}/persona-compose-deploy-$project.lock)"
case $command in
  up) up "$@" ;;
  start) start "$@" ;;
  reap) reap "$@" ;;
  status)
    [ $# -eq 0 ] || usage
    status
    ;;
  *) usage ;;
esac
