/**
 * The payment-token key's online rotation (graph/tokenRotation.ts, `npm run tokens:rotate`) on the
 * real graph, while others write: a process already on the new ring and one not yet rolled add
 * cards and renew tokens during the pass. Checked against an independent ledger of every clear
 * token: after the passes every token is under the new key, opens with the new key alone, and is
 * the token last written; nothing is lost or swapped between methods. The interleaving is drawn
 * from a printed seed (PERSONA_ROTATION_SEED=<seed> replays it).
 *
 * The rotation is scoped to this test's customers (`--customer`): the rest of the suite's
 * processes share the graph with a ring of one key, and must go on opening their own tokens.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyRing } from '../../config/keyRing';
import { addPaymentMethod, createCustomer, TokenCipher, type Graph } from '../../graph';
import { applyUpdaterAnswer } from '../../graph/cardUpdates';
import { reserveGovernedCharge } from '../../graph/chargeReservation';
import { rotateTokens, tokenKeyCensus, type RotationProgress } from '../../graph/tokenRotation';
import { mulberry32 } from '../../scripts/random';
import { cardInput, openTestGraph, type TestGraph } from '../support/graph';
import { startProcess } from '../support/processes';
import { until } from '../support/wait';

const SEED = Number(process.env.PERSONA_ROTATION_SEED ?? Math.floor(Math.random() * 2 ** 31));

let g: TestGraph;
beforeAll(() => {
  g = openTestGraph();
  console.log(`token rotation: seed ${SEED} (PERSONA_ROTATION_SEED=${SEED} replays it)`);
});
afterAll(() => g.close());

const withRing = (ring: KeyRing): Graph => ({ ...g, tokens: new TokenCipher(ring) });
const sealedOf = async (id: string, label = 'PaymentMethod') =>
  (await g.query<{ token: string }>(`MATCH (n:${label} {id: $id}) RETURN n.token AS token`, { id }))[0]?.token;

describe('rotating the payment-token key online', () => {
  it('re-seals every token under the new key while cards are added and renewed, and loses none', async () => {
    const rand = mulberry32(SEED);
    const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)] as T;
    const old = g.config.tokenKeys;
    const newKey = { id: `rotated-${randomUUID().slice(0, 8)}`, key: randomBytes(32) };
    const oldKeys = old.ids.map((id) => ({ id, key: old.get(id) as Buffer }));
    // The runbook's order: every process first learns the new key (still sealing under the old
    // one), then puts it first; the pass starts when the last has. Here the pass runs while that
    // second roll is still under way: one writer seals under the new key, the other the old.
    const rolled = withRing(new KeyRing([newKey, ...oldKeys]));
    const notRolled = withRing(new KeyRing([...oldKeys, newKey]));

    // The ledger: every method's clear token as last written, by whom.
    const ledger = new Map<string, string>();
    const owner = new Map<string, string>();
    const customers: string[] = [];
    for (let i = 0; i < 24; i++) {
      const c = await createCustomer(g, {});
      customers.push(c.id);
      for (let m = 0; m < 1 + Math.floor(rand() * 3); m++) {
        const token = `tok_visa_${randomUUID()}`;
        const pm = await addPaymentMethod(notRolled, c.id, cardInput({ token }));
        ledger.set(pm.id, token);
        owner.set(pm.id, c.id);
      }
    }
    // An unanswered charge keeps its own copy of the method's token until its answer.
    const charged = [...ledger.keys()][0] as string;
    const reservation = await reserveGovernedCharge(notRolled, {
      payment_id: `pay_${randomUUID()}`,
      customer_id: owner.get(charged) as string,
      payment_method_id: charged,
      key: `pay_${randomUUID()}:${charged}`,
      amount: 1999,
      currency: 'USD',
      initiator: 'mit',
      max: 15,
    });
    expect(reservation.verdict).toBe('allowed');
    const attemptKey = (reservation as { attempt: { key: string } }).attempt.key;
    const chargedToken = ledger.get(charged) as string;
    expect(TokenCipher.keyIdOf((await sealedOf(attemptKey, 'ChargeAttempt')) as string)).toBe(old.active.id);

    // The pass, while both kinds of process write: new cards and renewed tokens.
    const progress: RotationProgress[] = [];
    let rotating = true;
    const writers = async (): Promise<number> => {
      let writes = 0;
      while (rotating || writes < 4) {
        const by = rand() < 0.5 ? rolled : notRolled;
        if (rand() < 0.4) {
          const customer = pick(customers);
          const token = `tok_visa_${randomUUID()}`;
          const pm = await addPaymentMethod(by, customer, cardInput({ token }));
          ledger.set(pm.id, token);
          owner.set(pm.id, customer);
        } else {
          const pm = pick([...ledger.keys()]);
          const token = `tok_visa_${randomUUID()}`;
          const answer = {
            status: 'replaced' as const,
            token,
            expiry_month: 1 + Math.floor(rand() * 12),
            expiry_year: 2034,
          };
          await applyUpdaterAnswer(by, pm, answer);
          ledger.set(pm, token);
        }
        writes++;
      }
      return writes;
    };
    const [first, writes] = await Promise.all([
      rotateTokens(rolled, { customerIds: customers, batchSize: 3, onBatch: (p) => progress.push(p) }).finally(() => {
        rotating = false;
      }),
      writers(),
    ]);
    expect(writes).toBeGreaterThanOrEqual(4);
    expect(progress.length).toBeGreaterThan(3);
    const firstMethods = first.find((p) => p.holder === 'PaymentMethod') as RotationProgress;
    expect(firstMethods.resealed).toBeGreaterThan(0);
    expect(first.every((p) => p.unreadable.length === 0)).toBe(true);

    // Meanwhile both keys open: the rolled ring reads every token, old-sealed or new-sealed.
    for (const [pm, token] of ledger) {
      expect(rolled.tokens.decrypt((await sealedOf(pm)) as string, pm)).toBe(token);
    }

    // The writer still sealing under the old key did so after the pass went by: counted.
    const between = await tokenKeyCensus(g, customers);
    const stillOld = Object.entries(between.PaymentMethod).filter(([key]) => key !== newKey.id);
    console.log(`token rotation: ${writes} concurrent writes; left under the old key: ${JSON.stringify(stillOld)}`);

    // Every process rolled: a second pass leaves nothing under the old key.
    await rotateTokens(rolled, { customerIds: customers });
    const after = await tokenKeyCensus(g, customers);
    expect(Object.keys(after.PaymentMethod)).toEqual([newKey.id]);
    expect(after.PaymentMethod[newKey.id]).toBe(ledger.size);
    expect(Object.keys(after.ChargeAttempt)).toEqual([newKey.id]);

    // The old key can go: the new key alone opens every token, each the one last written to it.
    const newOnly = new TokenCipher(new KeyRing([newKey]));
    for (const [pm, token] of ledger) expect(newOnly.decrypt((await sealedOf(pm)) as string, pm)).toBe(token);
    // The charge's copy is the token it was reserved with, even if the method was renewed since.
    expect(newOnly.decrypt((await sealedOf(attemptKey, 'ChargeAttempt')) as string, charged)).toBe(chargedToken);
    // A process whose ring lacks the new key (the first roll skipped) says which key it lacks.
    const anyMethod = [...ledger.keys()][0] as string;
    const sealed = (await sealedOf(anyMethod)) as string;
    expect(() => withRing(old).tokens.decrypt(sealed, anyMethod)).toThrow(
      `payment-token key ${newKey.id} is not in PERSONA_TOKEN_KEYS`,
    );
  });

  it('never writes over a renewal that commits while the re-seal waits for the method’s lock', async () => {
    const old = g.config.tokenKeys;
    const newKey = { id: `rotated-${randomUUID().slice(0, 8)}`, key: randomBytes(32) };
    const rolled = withRing(new KeyRing([newKey, ...old.ids.map((id) => ({ id, key: old.get(id) as Buffer }))]));
    const c = await createCustomer(g, {});
    const pm = await addPaymentMethod(g, c.id, cardInput({ token: `tok_visa_${randomUUID()}` }));
    const renewed = `tok_visa_${randomUUID()}`;
    // A renewal holds the method's lock, written but not committed, while the rotation reads and re-seals.
    const session = g.driver.session({ database: g.database });
    const renewal = await session.beginTransaction();
    try {
      await renewal.run('MATCH (p:PaymentMethod {id: $id}) SET p.token = $token', {
        id: pm.id,
        token: g.tokens.encrypt(renewed, pm.id),
      });
      const rotation = rotateTokens(rolled, { customerIds: [c.id] });
      // The re-seal is waiting for the lock the renewal holds.
      await until(async () =>
        (
          await g.query<{ status: string }>(
            "SHOW TRANSACTIONS YIELD currentQuery, status WHERE currentQuery CONTAINS 'r.old' RETURN status",
          )
        ).some((t) => t.status.startsWith('Blocked')),
      );
      await renewal.commit();
      const [methods] = await rotation;
      expect(methods).toMatchObject({ holder: 'PaymentMethod', resealed: 0, changedMeanwhile: 1 });
    } finally {
      await session.close();
    }
    expect(rolled.tokens.decrypt((await sealedOf(pm.id)) as string, pm.id)).toBe(renewed);
    // The next pass re-seals the renewal's token under the new key.
    await rotateTokens(rolled, { customerIds: [c.id] });
    expect(TokenCipher.keyIdOf((await sealedOf(pm.id)) as string)).toBe(newKey.id);
  });

  it('is an npm step that rotates, says how far it got, and exits 1 while a token is under another key', async () => {
    const c = await createCustomer(g, {});
    const token = `tok_visa_${randomUUID()}`;
    const pm = await addPaymentMethod(g, c.id, cardInput({ token }));
    const old = g.config.tokenKeys;
    const spec = (keys: { id: string; key: Buffer }[]) =>
      keys.map((k) => `${k.id}:${k.key.toString('base64')}`).join(',');
    const oldKeys = old.ids.map((id) => ({ id, key: old.get(id) as Buffer }));
    const newKey = { id: `rotated-${randomUUID().slice(0, 8)}`, key: randomBytes(32) };
    const run = async (...args: string[]) => {
      const proc = startProcess(
        'scripts/rotate-tokens.ts',
        { PERSONA_TOKEN_KEYS: spec([newKey, ...oldKeys]) },
        [],
        args,
      );
      return { code: await proc.exited, out: proc.output() };
    };
    const check = await run('--check', '--customer', c.id);
    expect(check.code).toBe(1);
    expect(check.out).toContain(`PaymentMethod tokens by key: ${old.active.id}: 1`);
    expect(check.out).toContain(`not under ${newKey.id} yet`);

    const unconfirmed = await run('--customer', c.id);
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.out).toContain('run it again with --confirm');
    expect(TokenCipher.keyIdOf((await sealedOf(pm.id)) as string)).toBe(old.active.id);
    const rotate = await run('--confirm', '--customer', c.id);
    expect(rotate.code).toBe(0);
    expect(rotate.out).toContain(`PaymentMethod: 1 scanned, 1 re-sealed under ${newKey.id}`);
    expect(rotate.out).toContain(`PaymentMethod tokens by key: ${newKey.id}: 1`);
    expect(rotate.out).toContain(`every token is under ${newKey.id}`);
    expect(rotate.out).not.toContain(token);
    expect(new TokenCipher(new KeyRing([newKey])).decrypt((await sealedOf(pm.id)) as string, pm.id)).toBe(token);
  });
});
