/**
 * Settles the payment recoveries the charge ledger has `recovering` that no workflow runs — a
 * recovery terminated by hand, or one a restore terminated and wrote back into the ledger — with
 * the gateway, sending nothing (activities/strandedRecoveries.ts): a charge the gateway made is
 * recorded as the recovery's; one still processing, or a "no charge" not believable yet (the
 * settle window, PERSONA_CHARGE_SETTLE_MINUTES, since the last request or the workflow's close), is
 * left and said why; else the recovery is recorded stopped. The gateway reconciliation flags
 * these (`stranded_recovery`); docs/runbook.md, "A recovery terminated by hand".
 *
 *   npm run ops:settle-recoveries -- --dry-run                 what it would do, changing nothing
 *   npm run ops:settle-recoveries -- --reason "<why>"          every stranded recovery
 *   npm run ops:settle-recoveries -- --reason "<why>" --payment <id> [--payment <id>…]   only these
 *
 * The reason, and who ran it (user@host), are written into each settled recovery's record.
 *
 * It needs the worker's configuration (Neo4j, the gateway, Temporal). Exits 1 when any is left
 * unsettled (run it again later), 0 when none is.
 */
import { hostname, userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { settleStrandedRecoveries } from '../activities/strandedRecoveries';
import { HttpPaymentGateway } from '../clients/paymentGateway';
import { chargePolicy, ConfigError, loadConfig, profileRules } from '../config/env';
import { createDriver } from '../graph';
import { graphFromConfig } from '../runtime/graph';
import { connectTemporal } from '../temporal/connection';

const log = (line: string): void => console.log(`[settle] ${line}`);

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      payment: { type: 'string', multiple: true },
      reason: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    log('usage: settle-recoveries.ts (--reason "<why>" | --dry-run) [--payment <id>]…');
    return 0;
  }
  if (!values['dry-run'] && !values.reason?.trim()) {
    log('refused: say why (--reason "<why>"): it is kept with each recovery settled; or look first with --dry-run');
    return 2;
  }
  const config = loadConfig();
  const driver = createDriver(config);
  // Workflows are only described: no payload passes, so no codec.
  const { connection, client } = await connectTemporal(config);
  try {
    const dryRun = values['dry-run'];
    const report = await settleStrandedRecoveries(
      {
        graph: graphFromConfig(driver, config),
        gateway: new HttpPaymentGateway(config.PERSONA_GATEWAY_URL, config.PERSONA_GATEWAY_TIMEOUT_MS),
        temporal: client,
        settleMs: chargePolicy(config).settleMs,
        profileRules: profileRules(config),
      },
      {
        ...(values.payment ? { paymentIds: values.payment } : {}),
        ...(values.reason ? { requested: { by: `${userInfo().username}@${hostname()}`, reason: values.reason } } : {}),
        dryRun,
        onSettled: (id, outcome, why) =>
          log(`${id}: ${dryRun && outcome !== 'unknown' ? `would be ${outcome}` : outcome} — ${why}`),
      },
    );
    const verb = dryRun ? 'would be' : '';
    log(
      `${report.recovered.length} ${verb} recorded recovered, ${report.stopped.length} ${verb} recorded stopped, ` +
        `${report.unknown.length} left unsettled, ${report.running.length} running after all` +
        (dryRun ? ' (dry run: nothing changed)' : ''),
    );
    return report.unknown.length > 0 ? 1 : 0;
  } finally {
    await connection.close();
    await driver.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`[settle] failed: ${err instanceof ConfigError || err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
