/**
 * The payment-token key's online rotation:
 *   npm run tokens:rotate -- --confirm | --check [--customer <id>…]
 * Run once every api and worker has the new ring in PERSONA_TOKEN_KEYS (the new key first, the
 * old ones after it; `--confirm` says so, and without it nothing is written): re-seals every token
 * not under the active key, in batches, saying how far it got, then counts what each key still
 * holds. `--check` only counts; `--customer <id>` (repeatable) rotates and counts only those
 * customers' tokens, a canary before the whole graph. Exits 1 while any token is left under
 * another key (run it again once every process has the new ring), so a deploy can gate dropping
 * the old key on it. docs/runbook.md says the whole procedure.
 */
import { ConfigError, loadConfig } from '../config/env';
import { createDriver } from '../graph';
import { rotateTokens, tokenKeyCensus } from '../graph/tokenRotation';
import { graphFromConfig } from '../runtime/graph';

const log = (line: string): void => console.log(`[tokens] ${line}`);

async function main(): Promise<number> {
  const config = loadConfig();
  const driver = createDriver(config);
  try {
    const graph = graphFromConfig(driver, config);
    const active = config.tokenKeys.active.id;
    const customerIds = process.argv.flatMap((arg, i) => (arg === '--customer' ? [process.argv[i + 1] ?? ''] : []));
    const scope = customerIds.length > 0 ? { customerIds } : {};
    log(`ring ${config.tokenKeys.ids.join(', ')}; active key ${active}`);
    const writes = !process.argv.includes('--check');
    if (writes && !process.argv.includes('--confirm')) {
      // Re-sealed under a key the running processes lack, every token would be unreadable to them.
      log(
        `this re-seals tokens under ${active}: run it again with --confirm once every api and worker runs with ` +
          'this ring, the new key first (docs/runbook.md, "Rotate the payment-token key")',
      );
      return 2;
    }
    if (writes) {
      const started = Date.now();
      let lastLog = 0;
      const results = await rotateTokens(graph, {
        ...scope,
        onBatch: (p) => {
          if (Date.now() - lastLog < 2_000) return;
          lastLog = Date.now();
          log(`${p.holder}: ${p.scanned} scanned, ${p.resealed} re-sealed so far`);
        },
      });
      for (const p of results) {
        log(
          `${p.holder}: ${p.scanned} scanned, ${p.resealed} re-sealed under ${active}, ` +
            `${p.changedMeanwhile} changed meanwhile, ${p.unreadable.length} unreadable` +
            (p.unreadable.length > 0 ? ` (${p.unreadable.slice(0, 10).join(', ')})` : ''),
        );
      }
      log(`took ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
    const census = await tokenKeyCensus(graph, scope.customerIds);
    let elsewhere = 0;
    for (const [holder, byKey] of Object.entries(census)) {
      const parts = Object.entries(byKey).map(([key, n]) => `${key}: ${n}`);
      log(`${holder} tokens by key: ${parts.length > 0 ? parts.join(', ') : 'none'}`);
      elsewhere += Object.entries(byKey).reduce((sum, [key, n]) => sum + (key === active ? 0 : n), 0);
    }
    if (elsewhere > 0) {
      log(`${elsewhere} tokens are not under ${active} yet: keep the old keys in the ring`);
      return 1;
    }
    log(`every token is under ${active}: the other keys can leave PERSONA_TOKEN_KEYS`);
    return 0;
  } finally {
    await driver.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`[tokens] failed: ${err instanceof ConfigError || err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
