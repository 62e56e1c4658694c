#!/usr/bin/env bash
# What the image holds, built into one folder (the Dockerfile's build stage runs this; the image
# smoke test, test/integration/image.test.ts, runs it too, into a fresh folder):
#   scripts/build-image.sh <out>
# Needs the repository's dev dependencies installed (esbuild, tsx, the Temporal bundler). Writes:
#   <out>/api/main.js, workers/main.js, simulators/gateway/main.js, scripts/<name>.js
#                    each entry point compiled and bundled with the repository's own modules
#                    (packages stay imports), with a source map (lines, not the sources); the
#                    scripts: migrate, deploy, and the ops tools of docs/runbook.md (token,
#                    rotate-tokens, schedules-apply, retry-recoveries, settle-recoveries);
#   <out>/dist/workflows   the workflow bundles the worker loads (PERSONA_WORKFLOW_BUNDLE_DIR);
#   <out>/BUILD_ID         the build id of the workflow code (config/buildId.ts), which the image
#                          cannot compute: it carries no workflow source;
#   <out>/proto, config/network-rules, api/console/static   the files the processes read at run time;
#   <out>/node_modules     production dependencies only (npm ci --omit=dev), no tsx, no tests.
# <out> must be empty, or a folder this script wrote before (it holds .persona-image): it is emptied.
set -Eeuo pipefail
out=$(realpath -m "${1:?usage: scripts/build-image.sh <out-folder>}")
[ "$out" != / ] || { echo "build-image: not /" >&2; exit 2; }
cd "$(dirname "$0")/.."
repo=$(pwd)
case "$repo/" in "$out"/*) echo "build-image: $out holds the repository: choose another folder" >&2; exit 2 ;; esac
case "$out" in "$repo"/*) echo "build-image: $out is inside the repository: choose another folder" >&2; exit 2 ;; esac
mkdir -p "$out"
if [ -n "$(ls -A "$out")" ] && [ "$(cat "$out/.persona-image" 2>/dev/null)" != "persona image build" ]; then
  echo "build-image: $out is not empty and not an earlier build (no .persona-image): choose another folder" >&2
  exit 2
fi
find "$out" -mindepth 1 -delete
echo "persona image build" >"$out/.persona-image"
started=$SECONDS

echo "[build-image] compiling the entry points into $out"
npx --no-install esbuild \
  api/main.ts workers/main.ts simulators/gateway/main.ts scripts/migrate.ts scripts/deploy.ts \
  scripts/token.ts scripts/rotate-tokens.ts scripts/schedules-apply.ts scripts/retry-recoveries.ts \
  scripts/settle-recoveries.ts \
  --bundle --platform=node --format=esm --target=node24 --packages=external \
  --sourcemap --sources-content=false --outbase=. --outdir="$out" --log-level=warning

echo "[build-image] bundling the workflow code"
node --import tsx scripts/bundle-workflows.ts "$out/dist/workflows"
node --import tsx -e "
  import('./config/buildId.ts').then(({ workflowCodeBuildId }) => process.stdout.write(workflowCodeBuildId('.')));
" >"$out/BUILD_ID"
echo "[build-image] build id $(cat "$out/BUILD_ID")"

mkdir -p "$out/config" "$out/api/console"
# The .proto files the gRPC server loads, not the TypeScript types generated from them.
(find proto -name '*.proto' -print0 | xargs -0 -I{} install -D -m 644 {} "$out/{}")
cp -R api/console/static "$out/api/console/static"
cp -R config/network-rules "$out/config/network-rules"
cp package.json package-lock.json "$out/"

echo "[build-image] production dependencies"
(cd "$out" && NODE_ENV=production npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
# Nothing of it writable but by its owner (the run stage makes root the owner).
chmod -R go-w "$out"
echo "[build-image] done in $((SECONDS - started)) s: $(du -sh "$out" | cut -f1)"
