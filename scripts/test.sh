#!/usr/bin/env bash
# `npm test`: every test, each phase timed, in two lanes one after the other, then the rest:
#   - the lane "beside", on one core and at the lowest priority: what needs no shared service (the
#     type-check, the format check, lint, the unit tests and the workflow tests, with their own
#     time-skipping servers); its output is printed when it ends;
#   - the integration tests, which wait on Neo4j, Temporal, Kafka and the processes they start;
# then the randomized money run, the contract test and the fleet. The phases with budgets of their
# own (the money run, the fleet) run apart from the rest, so the time of the rest is printed too.
# Stops at the first phase that fails; prints the times of those that ran.
set -Eeuo pipefail
script="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$script")/.."

MONEY=test/integration/money-moves-once.test.ts

# Each phase's time, one line each, written by either lane; the name of a phase that failed.
times=${PERSONA_TEST_TIMES:-}
phase() {
  local name=$1 own=$2
  shift 2
  local start=$SECONDS
  echo "::: test: ${name}"
  "$@" || {
    echo "$name" >>"${PERSONA_TEST_FAILED:-/dev/null}"
    return 1
  }
  local took=$((SECONDS - start))
  printf '%-20s %5ds %s\n' "$name" "$took" "$own" >>"$times"
  echo "::: test: ${name} done in ${took}s"
}

# A lane: this script again, in a process group of its own (stopping it stops its vitest and the
# servers that started), which stops itself should the script that started it be gone.
case "${1:-}" in
  --lane-integration | --lane-beside)
    (while kill -0 "$PPID" 2>/dev/null; do sleep 2; done; kill -- "-$$" 2>/dev/null) >/dev/null 2>&1 &
    if [ "$1" = --lane-integration ]; then
      phase integration shared npx vitest run --project integration --exclude "$MONEY"
    else
      # One core's worth: one check or one vitest worker at a time.
      phase type-check shared npm run --silent build
      phase format shared npm run --silent format:check
      phase lint shared npm run --silent lint
      phase unit shared npx vitest run --project unit --maxWorkers=1
      phase workflows shared env PERSONA_TEST_WORKFLOW_WORKERS=1 npx vitest run --project workflows
    fi
    exit 0
    ;;
esac

work=$(mktemp -d -t persona-test.XXXXXX)
times="$work/times"
failed="$work/failed"
: >"$times"
integration_pid=""
beside_pid=""
beside_shown=""

# The lane beside's output, its phase lines marked as its own (so that the last "::: test:" line
# is still the phase that failed, for a reader of the end of the output).
show_beside() {
  [ -z "$beside_shown" ] || return 0
  beside_shown=yes
  echo "::: the phases beside the integration tests:"
  sed 's/^::: test: /::: beside: /' "$work/beside.log"
}

stop_lane() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

report() {
  local code=$?
  stop_lane "$integration_pid"
  stop_lane "$beside_pid"
  [ -f "$work/beside.log" ] && show_beside
  local budgeted
  budgeted=$(awk '$NF == "own-budget" { sub(/s$/, "", $(NF-1)); n += $(NF-1) } END { print n + 0 }' "$times")
  echo
  echo "::: test phases"
  sed -E 's/ (shared|own-budget)$//; s/^/    /' "$times"
  echo "    all                  $(printf '%5ds' "$SECONDS")"
  echo "    all but the money run and the fleet (their own budgets) $((SECONDS - budgeted))s"
  if [ "$code" -ne 0 ] && [ -s "$failed" ]; then echo "::: test: $(head -n 1 "$failed") failed"; fi
  rm -rf "$work"
  exit "$code"
}
trap report EXIT
trap 'exit 130' INT TERM

# Installed once, before the lanes: both would otherwise install the stack at once on a new machine.
npm run --silent stack:install

export PERSONA_TEST_TIMES="$times" PERSONA_TEST_FAILED="$failed"
# The lane beside first, then the integration tests: run side by side, on a fresh clone with three
# Kafka nodes the integration lane ended (exit 4, no test failed) each time the lane beside finished
# its workflow tests; one after the other they cannot meet. (The cause is not found yet.)
setsid nice -n 19 bash "$script" --lane-beside >"$work/beside.log" 2>&1 &
beside_pid=$!
code=0
wait "$beside_pid" || code=$?
beside_pid=""
show_beside
[ "$code" -eq 0 ] || exit "$code"
setsid bash "$script" --lane-integration &
integration_pid=$!
code=0
wait "$integration_pid" || code=$?
integration_pid=""
[ "$code" -eq 0 ] || exit "$code"
phase money own-budget npx vitest run --project integration "$MONEY"
phase contract shared npm run --silent test:contract
phase fleet own-budget npm run --silent test:fleet
