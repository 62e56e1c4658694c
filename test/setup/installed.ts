/** Global setup for workflow tests: the stack's binaries (test server) must be installed. */
import { loadSettings } from '../../config/env';
import { installStack } from '../../stack/install';

export default async function setup(): Promise<void> {
  await installStack(loadSettings().PERSONA_STACK_DIR, (line) => console.log(`[stack] ${line}`));
}
