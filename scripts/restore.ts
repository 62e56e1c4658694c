/**
 * Restores the local stack's graph from a backup and reconciles it:
 *   npm run restore -- <archive> --reason "<why>"   (the reason and who ran it kept on GraphRestored)
 * Stop the api and the worker first (it refuses while either still serves; `--force` skips the
 * check). What it does, step by step, is in docs/runbook.md, "Restoring the graph from a backup".
 */
import { hostname, userInfo } from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../config/env';
import { runRestore, servingProcesses } from '../backup/run';
import { localNeo4jStore } from '../stack/services';

const log = (line: string): void => console.log(`[restore] ${line}`);

async function main(args: string[]): Promise<number> {
  const force = args.includes('--force');
  const at = args.indexOf('--reason');
  const given = at >= 0 ? (args[at + 1] ?? '') : '';
  const reason = given.startsWith('--') ? '' : given;
  const archive = args.find((a, i) => !a.startsWith('--') && i !== at + 1);
  if (!archive || !reason.trim()) {
    console.error(
      'usage: npm run restore -- <archive.tar.gz> --reason "<why>" [--force] [--accept-lost-erasures]\n' +
        '  the reason and who ran it are kept on the GraphRestored event',
    );
    return 2;
  }
  const config = loadConfig();
  const serving = force ? [] : await servingProcesses(config);
  if (serving.length > 0) {
    console.error(
      `[restore] refused: Persona still serves (${serving.join('; ')}). Stop the api and the worker first: ` +
        'they must not write to the graph or run workflows until the restore has reconciled both ' +
        '(a worker stopped less than a minute ago still shows; wait, or pass --force).',
    );
    return 3;
  }
  const r = await runRestore(config, localNeo4jStore(config, log), path.resolve(archive), log, {
    acceptLostErasures: args.includes('--accept-lost-erasures'),
    requested: { by: `${userInfo().username}@${hostname()}`, reason },
  });
  console.log(JSON.stringify({ backup: r.manifest.id, ...r.report }, null, 2));
  log('done: start the worker and the api again (npm run dev)');
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(
      `[restore] failed: ${err instanceof ConfigError || err instanceof Error ? err.message : String(err)}`,
    );
    process.exit(1);
  },
);
