#!/usr/bin/env bash
# `npm test`: every test, one phase after another (the static checks at once), each timed. The phases with budgets of their own
# (the randomized money run, the fleet) run apart from the rest, so the time of the rest is
# printed too. Stops at the first phase that fails; prints the times of those that ran.
set -Eeuo pipefail
cd "$(dirname "$0")/.."

phases=()
budgeted=0
phase() {
  local name=$1 own=$2
  shift 2
  local start=$SECONDS
  echo "::: test: ${name}"
  "$@"
  local took=$((SECONDS - start))
  phases+=("$(printf '%-20s %5ds' "$name" "$took")")
  [ "$own" = own-budget ] && budgeted=$((budgeted + took))
  echo "::: test: ${name} done in ${took}s"
}

report() {
  local code=$?
  echo
  echo "::: test phases"
  for p in "${phases[@]}"; do echo "    $p"; done
  echo "    all                  $(printf '%5ds' "$SECONDS")"
  echo "    all but the money run and the fleet (their own budgets) $((SECONDS - budgeted))s"
  exit "$code"
}
trap report EXIT

# The static checks share nothing and each keeps one core busy: the type-check and the format
# check in one lane, lint (the longest, type-aware) in another, at once. Each lane's output is kept
# apart and printed whole when both have ended; the phase fails when either lane did.
static_checks() {
  local dir
  dir=$(mktemp -d)
  lane() {
    local out=$1
    shift
    for name in "$@"; do
      local start=$SECONDS code=0
      npm run --silent "${name#*=}" >"$dir/$out.log" 2>&1 || code=$?
      echo "$(printf '  %-18s %5ds' "${name%%=*}" $((SECONDS - start)))" >>"$dir/times"
      [ "$code" -eq 0 ] || { echo "${name%%=*} failed" >>"$dir/failed"; return "$code"; }
      out="$out+"
    done
  }
  lane a type-check=build format=format:check &
  local a=$!
  lane b lint=lint &
  local b=$!
  wait "$a" || true
  wait "$b" || true
  cat "$dir"/*.log
  [ -f "$dir/times" ] && while IFS= read -r line; do phases+=("$line"); done <"$dir/times"
  local failed=0
  if [ -f "$dir/failed" ]; then
    cat "$dir/failed"
    failed=1
  fi
  rm -rf "$dir"
  return "$failed"
}

MONEY=test/integration/money-moves-once.test.ts

phase "static checks" shared static_checks
phase unit shared npx vitest run --project unit
phase workflows shared npx vitest run --project workflows
phase integration shared npx vitest run --project integration --exclude "$MONEY"
phase money own-budget npx vitest run --project integration "$MONEY"
phase contract shared npm run --silent test:contract
phase fleet own-budget npm run --silent test:fleet
