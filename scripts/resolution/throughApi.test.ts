/**
 * The pure half of the resolution bench through the api: records become requests the api's own
 * validation takes (a refused field dropped, the rest kept), answers are read strictly, and the
 * figures follow offline.ts's definitions — checked by replaying offline decisions as if the api had
 * answered them, where the two must agree.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_GRAPH_POLICY } from '../../graph/graph';
import { prepareOnboarding } from '../../graph/onboardingRequest';
import { DomainError } from '../../graph/errors';
import { POLICY } from '../../resolution/policy';
import { emptyRecord, type LabelledRecord } from '../../resolution/record';
import { MATCH_MODEL } from '../../resolution/weights';
import { generateHouseholds } from './households';
import { evaluate, prepareSet, resolveOne } from './offline';
import {
  dropRefused,
  figuresThroughApi,
  fileLoads,
  onboardingPayload,
  readAnswer,
  type OnboardingAnswer,
  type OnboardingBody,
  type Replayed,
} from './throughApi';

/** The api's validation and preparation of a request, without a graph: the field it refuses, or null. */
const graphStub = {
  tokens: { encrypt: () => 'sealed' },
  policy: DEFAULT_GRAPH_POLICY,
} as unknown as Parameters<typeof prepareOnboarding>[0];
function refusedField(body: OnboardingBody): string | null {
  try {
    prepareOnboarding(graphStub, body);
    return null;
  } catch (err) {
    if (err instanceof DomainError && 'field' in err) return String(err.field) || 'body';
    throw err;
  }
}

const labelled = (id: string, over: Partial<LabelledRecord>): LabelledRecord => ({
  ...emptyRecord(id),
  person: id,
  household: null,
  slice: 'on-file',
  region: 'GB',
  ...over,
});

const answer = (
  customer: string,
  outcome: 'created' | 'matched' = 'created',
  matches: [string, number][] = [],
): OnboardingAnswer => ({
  customer_id: customer,
  outcome,
  possible_match_count: matches.length,
  possible_matches: matches.map(([customer_id, probability]) => ({ customer_id, probability })),
  workflow_id: `onboarding-${customer}`,
});

describe('onboardingPayload', () => {
  const record = labelled('f-1', {
    given_name: 'Ada',
    family_name: 'Lovelace',
    birth_date: '1815-12',
    emails: [{ value: 'Ada@Example.org', verified: true }],
    phones: [{ value: '020 7946 0123', verified: false }],
    addresses: [
      { street1: '12 St James Sq', street2: null, city: 'London', state: null, zip_code: 'SW1Y 4JH', country: 'GB' },
      { street1: '1 Other St', street2: null, city: 'Leeds', state: null, zip_code: 'LS1 1AA', country: 'GB' },
    ],
    devices: [{ fingerprint: 'fp-a', ip: null }],
    cards: [{ fingerprint: 'card-fp', brand: 'visa', last_four: '4242', expiry_month: 12, expiry_year: 2031 }],
  });

  it('sends every identifier with its flag, phones in international form, and the first of the rest', () => {
    expect(onboardingPayload(record, 'tok_bench_1')).toEqual({
      digital_identifiers: [
        { type: 'email', value: 'Ada@Example.org', is_verified: true },
        { type: 'phone_number', value: '+442079460123', is_verified: false },
      ],
      address: { street1: '12 St James Sq', city: 'London', zip_code: 'SW1Y 4JH', country: 'GB' },
      device: { fingerprint: 'fp-a' },
      payment_method: {
        type: 'card',
        token: 'tok_bench_1',
        brand: 'visa',
        last_four: '4242',
        expiry_month: 12,
        expiry_year: 2031,
      },
      person: { given_name: 'Ada', family_name: 'Lovelace', birth_date: '1815-12' },
    });
    expect(refusedField(onboardingPayload(record, 'tok_bench_1'))).toBeNull();
  });

  it("reads a national phone in the record's region, with no address to tell it", () => {
    const phones = [{ value: '214-705-7241', verified: true }];
    expect(onboardingPayload(labelled('s-1', { region: 'US', phones }), 't').digital_identifiers).toEqual([
      { type: 'phone_number', value: '+12147057241', is_verified: true },
    ]);
  });

  it('leaves out what the record does not know', () => {
    const bare = onboardingPayload(labelled('f-2', { devices: [{ fingerprint: 'fp-b', ip: '10.0.0.1' }] }), 't');
    expect(bare).toEqual({ digital_identifiers: [], device: { fingerprint: 'fp-b', ip: '10.0.0.1' } });
  });

  it('gets a FEBRL-like record through by dropping, one refusal at a time, what the api will not take', () => {
    let body = onboardingPayload(
      labelled('rec-1-org', {
        given_name: 'joel',
        birth_date: '1956-02-31',
        phones: [{ value: '+61401234567', verified: true }],
        addresses: [
          { street1: '12 ada street', street2: null, city: null, state: 'nsw', zip_code: null, country: 'AU' },
        ],
      }),
      'tok_bench_2',
    );
    const dropped: string[] = [];
    for (let field = refusedField(body); field !== null; field = refusedField(body)) {
      const next = dropRefused(body, field) as NonNullable<ReturnType<typeof dropRefused>>;
      dropped.push(next.dropped);
      body = next.body;
    }
    expect(dropped.sort()).toEqual(['address.city', 'person.birth_date']);
    expect(body).toEqual({
      digital_identifiers: [{ type: 'phone_number', value: '+61401234567', is_verified: true }],
      person: { given_name: 'joel' },
    });
  });

  it('makes requests the api takes for every household record that holds an identity fact', () => {
    const set = generateHouseholds({ seed: 4, households: 200, signUps: 200 });
    const refused: OnboardingBody[] = [];
    let drops = 0;
    for (const r of [...set.onFile, ...set.signUps]) {
      let body = onboardingPayload(r, `tok_bench_${r.id}`);
      for (let field = refusedField(body); field !== null; field = refusedField(body)) {
        const next = dropRefused(body, field);
        if (!next) {
          expect(field).toBe('body');
          refused.push(body);
          break;
        }
        drops++;
        body = next.body;
      }
    }
    // Only a sign-up with a name and an address and nothing else: no identifier, device or card.
    expect(refused.length).toBeLessThan(0.05 * (set.onFile.length + set.signUps.length));
    for (const body of refused)
      expect(body).toEqual({ digital_identifiers: [], address: body.address, person: body.person });
    expect(drops).toBeLessThan(0.05 * (set.onFile.length + set.signUps.length));
  });
});

describe('dropRefused', () => {
  const body: OnboardingBody = {
    digital_identifiers: [
      { type: 'email', value: 'a@b.co', is_verified: true },
      { type: 'phone_number', value: '07700', is_verified: false },
    ],
    address: { street1: '1 High St', country: 'GB' },
    device: { fingerprint: 'fp', ip: '10.0.0.1' },
    payment_method: { type: 'card', token: 't', last_four: '4242' },
    person: { given_name: 'Ada', birth_date: '1815-02-30' },
  };

  it('drops the one identifier, person part or IP named, and counts it without its index', () => {
    expect(dropRefused(body, 'digital_identifiers.1.value')).toEqual({
      body: { ...body, digital_identifiers: [body.digital_identifiers[0]] },
      dropped: 'digital_identifiers.*.value (phone_number)',
    });
    expect(dropRefused(body, 'person.birth_date')).toEqual({
      body: { ...body, person: { given_name: 'Ada' } },
      dropped: 'person.birth_date',
    });
    expect(dropRefused(body, 'device.ip')?.body.device).toEqual({ fingerprint: 'fp' });
    expect(body.person).toEqual({ given_name: 'Ada', birth_date: '1815-02-30' }); // the request itself is kept
  });

  it('drops a whole part when the field cannot go alone, and the person with its last part', () => {
    expect(dropRefused(body, 'address.city')?.body.address).toBeUndefined();
    expect(dropRefused(body, 'payment_method.brand')).toMatchObject({ dropped: 'payment_method.brand' });
    expect(dropRefused(body, 'payment_method.brand')?.body.payment_method).toBeUndefined();
    expect(dropRefused(body, 'device.fingerprint')?.body.device).toBeUndefined();
    const once = dropRefused(body, 'person.given_name')?.body as OnboardingBody;
    expect(dropRefused(once, 'person.birth_date')?.body.person).toBeUndefined();
  });

  it('cannot drop the body, a part the request lacks, or an identifier it does not have', () => {
    expect(dropRefused(body, 'body')).toBeNull();
    expect(dropRefused(body, 'customer.segment')).toBeNull();
    expect(dropRefused(body, 'digital_identifiers.7.value')).toBeNull();
    expect(dropRefused({ digital_identifiers: [] }, 'address.city')).toBeNull();
  });
});

describe('readAnswer', () => {
  const ok = {
    customer_id: 'c-1',
    outcome: 'created',
    possible_match_count: 1,
    possible_matches: [{ customer_id: 'c-0', probability: 0.7 }],
    workflow_id: 'onboarding-k',
  };

  it('reads the answer with its ranked possible matches', () => {
    expect(readAnswer(ok)).toEqual(ok);
    expect(readAnswer({ ...ok, possible_match_count: 0, possible_matches: undefined }).possible_matches).toEqual([]);
  });

  it('refuses bare ids, a count without a list, a probability out of range, and what is no result', () => {
    expect(() => readAnswer({ ...ok, possible_matches: ['c-0'] })).toThrow(/bare ids/);
    expect(() => readAnswer({ ...ok, possible_matches: undefined })).toThrow(/identity:merge/);
    expect(() => readAnswer({ ...ok, possible_matches: [{ customer_id: 'c-0', probability: 1.5 }] })).toThrow();
    expect(() => readAnswer({ workflow_id: 'onboarding-k' })).toThrow(/not an onboarding result/);
  });
});

describe('fileLoads', () => {
  it('knows each customer by the people loaded into it, whatever order the answers came in', () => {
    const a = labelled('f-1', { person: 'p-1', household: 'h-1' });
    const b = labelled('f-2', { person: 'p-2', household: 'h-1' });
    const a2 = labelled('f-3', { person: 'p-1', household: 'h-1' });
    const c = labelled('f-4', { person: 'p-3', household: null });
    const s = fileLoads([
      { record: b, answer: answer('c-1', 'matched') },
      { record: a, answer: answer('c-1') },
      { record: a2, answer: answer('c-1', 'matched') },
      { record: c, answer: answer('c-elsewhere', 'matched') },
    ]);
    expect(s).toMatchObject({ created: 1, linkedOwn: 1, linkedOther: 1, linkedUnknown: 1 });
    expect(s.customers.get('c-1')?.map((h) => h.person)).toEqual(['p-1', 'p-2', 'p-1']);
  });
});

describe('figuresThroughApi', () => {
  const onFile = fileLoads([
    { record: labelled('f-1', { person: 'p-1', household: 'h-1' }), answer: answer('c-1') },
    { record: labelled('f-2', { person: 'p-2', household: 'h-1' }), answer: answer('c-2') },
    { record: labelled('f-3', { person: 'p-3', household: null }), answer: answer('c-3') },
  ]).customers;
  const signUp = (person: string, household: string | null, slice = 'returning') =>
    labelled(`s-${person}`, { person, household, slice });
  const replayed: Replayed[] = [
    { signUp: signUp('p-1', 'h-1'), answer: answer('c-1', 'matched'), ms: 10 }, // right link
    {
      signUp: signUp('p-2', 'h-1'),
      answer: answer('c-9', 'created', [
        ['c-1', 0.6],
        ['c-2', 0.4],
      ]),
      ms: 20,
    },
    { signUp: signUp('p-3', null, 'adversarial'), answer: answer('c-1', 'matched'), ms: 30 }, // wrong link
    { signUp: signUp('p-4', 'h-1', 'relative'), answer: answer('c-8', 'created', [['c-9', 0.05]]), ms: 40 },
  ];
  const f = figuresThroughApi('tiny', onFile, replayed);

  it('counts links, their precision and recall, and recall at 1, 3 and 5', () => {
    expect(f).toMatchObject({ signUps: 4, returning: 3, autoLinks: 2, correctAutoLinks: 1 });
    expect(f.autoLinkPrecision).toBe(0.5);
    expect(f.autoLinkRecall).toBeCloseTo(1 / 3);
    expect(f.recallAt).toEqual({ 1: 1 / 3, 3: 2 / 3, 5: 2 / 3 });
    // The wrong link is a miss at every k: named, with what its answer listed.
    expect(f.misses).toEqual([{ record: 's-p-3', outcome: 'matched', listed: [] }]);
  });

  it('counts reviews, household wrong links, adversarial links and latency', () => {
    expect(f.reviews).toBe(1);
    expect(f.reviewsPer1000).toBe(250);
    // p-1 (right link), p-2 (top is p-1's: wrong), p-4 (top is c-9, which p-2's sign-up created: wrong).
    expect(f).toMatchObject({ householdSignUps: 3, householdWrongLinks: 2 });
    expect(f).toMatchObject({ adversarialSignUps: 1, adversarialAutoLinks: 1, unknownCustomers: 0 });
    expect(f.latencyMs).toMatchObject({ count: 4, p50: 30, max: 40 });
  });

  it('takes a possible match below the suggestion threshold for no suggestion, as offline does', () => {
    const below = POLICY.suggestProbability / 2;
    const listed: [string, number][] = [
      ['c-2', below],
      ['c-1', below / 2],
    ];
    const g = figuresThroughApi('below', onFile, [
      { signUp: signUp('p-1', 'h-1'), answer: answer('c-7', 'created', listed), ms: 1 },
    ]);
    // p-2's customer first, p-1's own second: neither is a suggestion, so no wrong link and no hit.
    expect(g).toMatchObject({ householdSignUps: 1, householdWrongLinks: 0, recallAt: { 1: 0, 3: 0, 5: 0 } });
    expect(g.possibleMatchPairs).toBe(2);
  });

  it('measures calibration over the possible matches returned', () => {
    expect(f.possibleMatchPairs).toBe(3);
    // Bins 0 (0.05, wrong), 4 (0.4, right), 6 (0.6, wrong): (0.05 + 0.6 + 0.6) / 3.
    expect(f.calibrationError).toBeCloseTo(1.25 / 3);
    // 0.05 and 0.4 suggest (one of them right), 0.6 asks for review.
    expect(f.policyBands.map((b) => b.pairs)).toEqual([2, 1, 0]);
    expect(f.policyBands[0]?.observed).toBe(0.5);
    // c-1 and c-2 were loaded on file; c-9 was created by p-2's sign-up: its pair is counted apart.
    expect(f.calibrationBySource.onFile).toEqual({ pairs: 2, error: expect.closeTo(1.2 / 2) });
    expect(f.calibrationBySource.signUps).toEqual({ pairs: 1, error: expect.closeTo(0.05) });
  });

  it('agrees with offline.ts when the api answers what the offline decision says', () => {
    const set = { ...generateHouseholds({ seed: 7, households: 400, signUps: 400 }), name: 'households-7' };
    const ps = prepareSet(set);
    const links = new Map<string, number>();
    const loaded = fileLoads(set.onFile.map((record) => ({ record, answer: answer(record.id) })));
    const asAnswered: Replayed[] = ps.signUps.map((s) => {
      const d = resolveOne(ps, s, MATCH_MODEL, links).decision;
      const matches = d.possibleMatches.map((c): [string, number] => [c.customerId, c.score.probability]);
      const id = d.outcome === 'linked' ? d.customerId : `new-${s.record.id}`;
      return { signUp: s.record, answer: answer(id, d.outcome === 'linked' ? 'matched' : 'created', matches), ms: 1 };
    });
    const api = figuresThroughApi(set.name, loaded.customers, asAnswered);
    const offline = evaluate(prepareSet(set), MATCH_MODEL);
    for (const k of ['signUps', 'returning', 'autoLinks', 'autoLinkPrecision', 'autoLinkRecall'] as const)
      expect(api[k], k).toBe(offline[k]);
    expect(api.recallAt).toEqual(offline.recallAt);
    expect(api.householdWrongLinks).toBe(offline.householdWrongLinks);
    expect(api.householdSignUps).toBe(offline.householdSignUps);
    expect(api.adversarialAutoLinks).toBe(offline.adversarialAutoLinks);
    expect(api.adversarialSignUps).toBe(offline.adversarialSignUps);
    // The answer shows no refused proof below the review threshold: never more reviews than offline.
    expect(api.reviewsPer1000).toBeLessThanOrEqual(offline.reviewsPer1000);
    expect(api.possibleMatchPairs).toBeGreaterThan(0);
  });
});
