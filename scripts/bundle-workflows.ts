/**
 * Bundles the workflow code once, for workers that load it instead of bundling at start:
 *   npm run build:workflows [-- <dir>]     (default dist/workflows)
 * Then run the worker with PERSONA_WORKFLOW_BUNDLE_DIR=<dir>. Rebuild after every change to
 * workflows/ (the image does it as it is built).
 */
import path from 'node:path';
import { buildWorkflowBundles, DEFAULT_BUNDLE_DIR } from '../workers/bundle';

async function main(): Promise<void> {
  const dir = path.resolve(process.argv[2] ?? DEFAULT_BUNDLE_DIR);
  const started = Date.now();
  for (const b of await buildWorkflowBundles(dir))
    console.log(`workflow bundle ${path.relative(process.cwd(), b.path)} (${(b.bytes / 1024).toFixed(0)} KiB)`);
  console.log(`built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
