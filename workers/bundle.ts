/**
 * The workflow bundle. Webpack bundles the workflow code (with Persona's workflow interceptors,
 * and OpenTelemetry's when tracing is on) into the code the worker's sandbox runs. Built once —
 * `npm run build:workflows`, and in the image — the worker loads it from
 * PERSONA_WORKFLOW_BUNDLE_DIR instead of bundling at every start; without it (development, tests)
 * the worker bundles the source as it starts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';
import { repoRoot } from '../config/env';
import { WORKFLOW_INTERCEPTORS } from './logging';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));
/** Where `npm run build:workflows` writes the bundles by default. */
export const DEFAULT_BUNDLE_DIR = path.join(repoRoot, 'dist', 'workflows');

/** OpenTelemetry's workflow interceptors, which its worker plugin adds when tracing is on. */
const OTEL_WORKFLOW_INTERCEPTORS = createRequire(import.meta.url).resolve(
  '@temporalio/interceptors-opentelemetry/lib/workflow-interceptors',
);

/** The bundle a worker loads: with OpenTelemetry's interceptors when it traces, else without. */
export function workflowBundlePath(dir: string, traced: boolean): string {
  return path.join(dir, traced ? 'workflows-traced.js' : 'workflows.js');
}

/** The workflow interceptor modules a bundle is built with (what a worker would add itself). */
export function workflowInterceptorModules(traced: boolean): string[] {
  return traced ? [WORKFLOW_INTERCEPTORS, OTEL_WORKFLOW_INTERCEPTORS] : [WORKFLOW_INTERCEPTORS];
}

/** Builds both bundles into `dir`; returns where each went and its size. */
export async function buildWorkflowBundles(dir: string): Promise<{ path: string; bytes: number }[]> {
  mkdirSync(dir, { recursive: true });
  const built: { path: string; bytes: number }[] = [];
  for (const traced of [false, true]) {
    const { code } = await bundleWorkflowCode({
      workflowsPath: WORKFLOWS_PATH,
      workflowInterceptorModules: workflowInterceptorModules(traced),
      logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} },
    });
    const file = workflowBundlePath(dir, traced);
    writeFileSync(file, code);
    built.push({ path: file, bytes: Buffer.byteLength(code) });
  }
  return built;
}
