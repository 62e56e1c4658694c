#!/usr/bin/env bash
# `npm test`: every test, one phase after another, each timed. The phases with budgets of their own
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

MONEY=test/integration/money-moves-once.test.ts

phase type-check shared npm run --silent build
phase lint shared npm run --silent lint
phase format shared npm run --silent format:check
phase unit shared npx vitest run --project unit
phase workflows shared npx vitest run --project workflows
phase integration shared npx vitest run --project integration --exclude "$MONEY"
phase money own-budget npx vitest run --project integration "$MONEY"
phase contract shared npm run --silent test:contract
phase fleet own-budget npm run --silent test:fleet
