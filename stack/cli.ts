/**
 * The local stack: `npm run stack:install | stack:up | stack:down | stack:status`.
 * Everything lives in the git-ignored folder PERSONA_STACK_DIR (default `.stack/`).
 */
import { ConfigError, loadSettings } from '../config/env';
import { installStack } from './install';
import { stackDown, stackStatus, stackUp } from './services';

const log = (line: string): void => console.log(`[stack] ${line}`);

async function main(command: string | undefined, args: string[]): Promise<number> {
  const settings = loadSettings();
  switch (command) {
    case 'install':
      await installStack(settings.PERSONA_STACK_DIR, log);
      return 0;
    case 'up':
      await stackUp(settings, log);
      return 0;
    case 'down':
      await stackDown(settings, log, args.length > 0 ? args : undefined);
      return 0;
    case 'status': {
      const statuses = await stackStatus(settings);
      for (const st of statuses) {
        const state = st.answering ? 'up' : st.running ? 'starting or unhealthy' : 'down';
        const owner = st.pid ? ` (pid ${st.pid})` : st.answering ? ' (not started by the stack)' : '';
        log(`${st.name.padEnd(9)} ${state}${owner}`);
        for (const a of st.addresses) log(`            ${a}`);
      }
      return statuses.every((st) => st.answering) ? 0 : 3;
    }
    default:
      console.error('usage: tsx stack/cli.ts install|up|down [service…]|status');
      return 2;
  }
}

main(process.argv[2], process.argv.slice(3)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(
      err instanceof ConfigError ? err.message : `[stack] failed: ${err instanceof Error ? err.message : String(err)}`,
    );
    process.exit(1);
  },
);
