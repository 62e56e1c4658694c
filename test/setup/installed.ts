/**
 * Global setup for workflow tests: the stack's binaries (test server) must be installed, and the
 * workflow code is bundled once, with the workers' interceptors (PERSONA_WORKFLOW_TESTS_BUNDLE_DIR),
 * for every file that runs Persona's workflows (test/support/temporal.ts `useWorkflowTestEnv`).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { loadSettings } from '../../config/env';
import { installStack } from '../../stack/install';
import { WORKFLOWS_PATH, workflowBundlePath, workflowInterceptorModules } from '../../workers/bundle';

export default async function setup(): Promise<() => void> {
  await installStack(loadSettings().PERSONA_STACK_DIR, (line) => console.log(`[stack] ${line}`));
  const dir = mkdtempSync(path.join(tmpdir(), 'persona-workflow-test-bundle-'));
  const { code } = await bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    workflowInterceptorModules: workflowInterceptorModules(false),
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} },
  });
  writeFileSync(workflowBundlePath(dir, false), code);
  process.env.PERSONA_WORKFLOW_TESTS_BUNDLE_DIR = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
