/**
 * A backup of the local stack's graph:   npm run backup
 * Stops the stack's Neo4j for the copy and starts it again (saying how long it was down), writes
 * `persona-backup-<time>.tar.gz` and its `.sha256` into PERSONA_BACKUP_DIR (default
 * .stack/backups/), keeps the newest PERSONA_BACKUP_KEEP. Production: docs/deployment.md.
 */
import { ConfigError, loadConfig } from '../config/env';
import { runBackup } from '../backup/run';
import { localNeo4jStore } from '../stack/services';

const log = (line: string): void => console.log(`[backup] ${line}`);

async function main(): Promise<void> {
  const config = loadConfig();
  await runBackup(config, localNeo4jStore(config, log), log);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`[backup] failed: ${err instanceof ConfigError || err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
