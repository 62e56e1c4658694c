/**
 * The console's customer page (GET /console/customers/:id): profile, the identity graph drawn and
 * in a table, wallet, history in words, possible matches, workflows, contested entries. Everything
 * is read at once (one graph read per part, the workflows from Temporal beside them) through the
 * same services as the REST api; every identifier is masked (api/console/mask.ts) and no payment
 * token is ever read. What the session's scopes do not allow is not shown.
 */
import { raw } from 'hono/html';
import { isVip } from '../../graph/context';
import { readCustomerGraph, type ConsoleCard, type ConsoleDevice, type CustomerGraph } from '../../graph/console';
import { cardInWords, type ScorePart } from '../../graph/matchScore';
import { toMinorUnits } from '../../payments/money';
import type { ApiDeps } from '../deps';
import { getProfile, listWallet, possibleMatches } from '../services/customers';
import { customerHistory } from '../services/events';
import { ContestsSection } from './contests';
import { loadCustomerWorkflows, WorkflowsSection, type CustomerWorkflows } from './customerWorkflows';
import { ActionForm, can, Page, when } from './kit';
import { maskIdentifier, maskOpaque } from './mask';
import type { ConsoleSession } from './session';

/** History entries per page. */
export const HISTORY_PAGE_SIZE = 25;

type Profile = Awaited<ReturnType<typeof getProfile>>;
type Wallet = Awaited<ReturnType<typeof listWallet>>;
type History = Awaited<ReturnType<typeof customerHistory>>;
type Matches = Awaited<ReturnType<typeof possibleMatches>>;

export interface CustomerPageData {
  profile: Profile;
  graph: CustomerGraph;
  wallet: Wallet;
  /** Null when the session may not read the history (the REST route's rule: ops). */
  history: History | null;
  matches: Matches;
  workflows: CustomerWorkflows;
  /** The contested entries' section, rendered beside the reads (api/console/contests.tsx). */
  contests: string;
}

/** Who may read a customer's history: the REST route's rule (ops; a customer's own token has its own page). */
export const mayReadHistory = (session: ConsoleSession) => can(session.principal, ['ops']);

/**
 * Everything the page shows, read at once. A merged customer's id answers its survivor's profile
 * (`merged_into`): the caller sends the browser there.
 */
export async function loadCustomerPage(
  deps: ApiDeps,
  customerId: string,
  session: ConsoleSession,
  before: string | undefined,
): Promise<CustomerPageData> {
  const g = deps.graph;
  // Rendered now, so its reads run beside the others.
  const contests = Promise.resolve(
    // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a JSX node renders to its HTML
    (<ContestsSection deps={deps} customerId={customerId} session={session} />).toString(),
  );
  const [profile, graph, wallet, history, matches, workflows, contestsHtml] = await Promise.all([
    getProfile(g, customerId),
    readCustomerGraph(g, customerId),
    listWallet(g, customerId),
    mayReadHistory(session) ? customerHistory(deps, customerId, before, HISTORY_PAGE_SIZE) : Promise.resolve(null),
    possibleMatches(g, customerId),
    loadCustomerWorkflows(deps, customerId, session.principal),
    contests,
  ]);
  return { profile, graph, wallet, history, matches, workflows, contests: contestsHtml };
}

// ---- the identity graph -------------------------------------------------------------------------

const identifierShown = (type: string, value: string) => maskIdentifier(type, value);
const deviceShown = (d: ConsoleDevice) => `Device ${maskOpaque(d.fingerprint)}`;
const cardShown = (c: ConsoleCard) =>
  c.type === 'card' ? cardInWords(c).replace(/ exp .*$/, '') : c.type.replace(/_/g, ' ');

function sharedWords(n: number, cap?: number): string {
  if (n <= 0) return 'none';
  if (cap !== undefined && n >= cap) return `${cap} or more other customers`;
  return n === 1 ? '1 other customer' : `${n.toLocaleString('en')} other customers`;
}

interface GraphElement {
  data: { id: string; label?: string; kind?: string; source?: string; target?: string };
}

/** The drawing's nodes and edges (the page's JSON block): masked labels only. */
export function graphElements(graph: CustomerGraph): GraphElement[] {
  const nodes: GraphElement[] = [{ data: { id: 'customer', label: 'This customer', kind: 'customer' } }];
  const edges: GraphElement[] = [];
  const link = (source: string, target: string) => edges.push({ data: { id: `${source}->${target}`, source, target } });
  const others = (owner: string, n: number, cap?: number) => {
    if (n <= 0) return;
    const id = `others:${owner}`;
    nodes.push({ data: { id, label: sharedWords(n, cap), kind: 'others' } });
    link(owner, id);
  };
  for (const c of graph.cards) {
    const id = `card:${c.id}`;
    nodes.push({ data: { id, label: `${cardShown(c)} (${c.status})`, kind: 'card' } });
    link('customer', id);
    others(id, c.shared_with, graph.share_cap);
  }
  for (const d of graph.devices) {
    const id = `device:${d.id}`;
    nodes.push({ data: { id, label: `${deviceShown(d)}, trust ${d.trust_score.toFixed(2)}`, kind: 'device' } });
    link('customer', id);
    others(id, d.shared_with);
  }
  for (const a of graph.addresses) {
    const id = `address:${a.id}`;
    nodes.push({ data: { id, label: [a.city, a.country].filter(Boolean).join(', ') || a.type, kind: 'address' } });
    link('customer', id);
  }
  for (const i of graph.identifiers) {
    const id = `identifier:${i.id}`;
    nodes.push({ data: { id, label: identifierShown(i.type, i.value), kind: 'identifier' } });
    link('customer', id);
  }
  for (const [card, device] of graph.used_on) link(`card:${card}`, `device:${device}`);
  return [...nodes, ...edges];
}

/** JSON for a `<script type="application/json">` block: nothing in it can end the block or open markup. */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

function count(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

function GraphSection({ graph, trustThreshold }: { graph: CustomerGraph; trustThreshold: number }) {
  const t = graph.totals;
  const description =
    `The identity graph of this customer: ${count(t.cards, 'payment method', 'payment methods')}, ` +
    `${count(t.devices, 'device', 'devices')}, ${count(t.addresses, 'address', 'addresses')} and ` +
    `${count(t.identifiers, 'contact detail', 'contact details')}, with the other customers sharing a device or ` +
    'card counted. The table below lists the same.';
  const cut = [
    t.cards > graph.cards.length ? 'payment methods' : null,
    t.devices > graph.devices.length ? 'devices' : null,
    t.addresses > graph.addresses.length ? 'addresses' : null,
    t.identifiers > graph.identifiers.length ? 'contact details' : null,
  ].filter(Boolean);
  const usedOn = (cardId: string) => graph.used_on.filter(([c]) => c === cardId).length;
  return (
    <section id="graph" aria-labelledby="graph-title">
      <h2 id="graph-title">Identity graph</h2>
      <div id="identity-graph" role="img" aria-label={description} />
      <script type="application/json" id="identity-graph-data">
        {raw(jsonForScript(graphElements(graph)))}
      </script>
      {cut.length > 0 ? <p class="hint">{`Only the first ${graph.cap} ${cut.join(', ')} are shown.`}</p> : null}
      <table>
        <caption>What is linked to this customer</caption>
        <thead>
          <tr>
            <th scope="col">Kind</th>
            <th scope="col">What</th>
            <th scope="col">Details</th>
            <th scope="col">Other customers sharing it</th>
          </tr>
        </thead>
        <tbody>
          {graph.cards.map((c) => (
            <tr>
              <th scope="row">Payment method</th>
              <td>{cardShown(c)}</td>
              <td>
                {[
                  c.status,
                  c.expiry_month && c.expiry_year
                    ? `expires ${String(c.expiry_month).padStart(2, '0')}/${c.expiry_year}`
                    : null,
                  c.is_default ? 'default' : null,
                  usedOn(c.id) > 0 ? `used on ${count(usedOn(c.id), 'of these devices', 'of these devices')}` : null,
                ]
                  .filter(Boolean)
                  .join(', ')}
              </td>
              <td>{sharedWords(c.shared_with, graph.share_cap)}</td>
            </tr>
          ))}
          {graph.devices.map((d) => (
            <tr>
              <th scope="row">Device</th>
              <td>{deviceShown(d)}</td>
              <td>
                {`trust score ${d.trust_score.toFixed(2)} ` +
                  `(${d.trust_score >= trustThreshold ? 'trusted' : 'not trusted'})` +
                  `, last sign-in ${when(d.last_login)}` +
                  (d.disowned_at ? `, disowned by the customer ${when(d.disowned_at)} (kept for fraud checks)` : '')}
              </td>
              <td>{sharedWords(d.shared_with)}</td>
            </tr>
          ))}
          {graph.addresses.map((a) => (
            <tr>
              <th scope="row">Address</th>
              <td>{[a.city, a.country].filter(Boolean).join(', ') || '—'}</td>
              <td>
                {`${a.type}${a.is_default ? ', default' : ''}` +
                  (a.disowned_at ? `, disowned by the customer ${when(a.disowned_at)}` : '')}
              </td>
              <td>—</td>
            </tr>
          ))}
          {graph.identifiers.map((i) => (
            <tr>
              <th scope="row">{i.type === 'email' ? 'Email address' : 'Phone number'}</th>
              <td>{identifierShown(i.type, i.value)}</td>
              <td>{i.is_verified ? 'verified' : 'not verified'}</td>
              <td>—</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

// ---- the other sections -------------------------------------------------------------------------

function ProfileSection({ profile, deps, mergedFrom }: { profile: Profile; deps: ApiDeps; mergedFrom?: string }) {
  const currency = profile.ltv_currency;
  const ltvMinor = toMinorUnits(profile.ltv, currency);
  const predictedMinor = profile.predicted_ltv === null ? null : toMinorUnits(profile.predicted_ltv, currency);
  const vip = isVip(profile.segment, ltvMinor, predictedMinor, deps.policy);
  const statusClass = profile.status === 'active' ? 'badge good' : 'badge bad';
  return (
    <section id="profile" aria-labelledby="profile-title">
      <h2 id="profile-title">Profile</h2>
      {mergedFrom ? (
        <p
          class="hint"
          role="status"
        >{`Customer ${mergedFrom} was merged into this customer: this is its record now.`}</p>
      ) : null}
      <dl class="facts">
        <dt>Customer id</dt>
        <dd>{profile.customer_id}</dd>
        <dt>Status</dt>
        <dd>
          <span class={statusClass}>{profile.status}</span>
        </dd>
        <dt>Segment</dt>
        <dd>{profile.segment}</dd>
        <dt>VIP</dt>
        <dd>{vip ? 'yes' : 'no'}</dd>
        <dt>Lifetime value</dt>
        <dd>{`${profile.ltv} ${currency}`}</dd>
        {profile.predicted_ltv !== null ? (
          <>
            <dt>Predicted lifetime value</dt>
            <dd>{`${profile.predicted_ltv} ${currency}`}</dd>
          </>
        ) : null}
        <dt>Customer since</dt>
        <dd>{profile.acquisition_date}</dd>
      </dl>
    </section>
  );
}

function WalletSection({ wallet }: { wallet: Wallet }) {
  return (
    <section id="wallet" aria-labelledby="wallet-title">
      <h2 id="wallet-title">Wallet</h2>
      {wallet.data.length === 0 ? (
        <p>No payment method.</p>
      ) : (
        <table>
          <caption>Payment methods, the default first</caption>
          <thead>
            <tr>
              <th scope="col">Method</th>
              <th scope="col">Brand</th>
              <th scope="col">Last four</th>
              <th scope="col">Expiry</th>
              <th scope="col">Status</th>
              <th scope="col">Default</th>
              <th scope="col">Last used</th>
            </tr>
          </thead>
          <tbody>
            {wallet.data.map((pm) => (
              <tr>
                <th scope="row">{pm.type.replace(/_/g, ' ')}</th>
                <td>{pm.brand ?? '—'}</td>
                <td>{pm.last_four ?? '—'}</td>
                <td>
                  {pm.expiry_month && pm.expiry_year
                    ? `${String(pm.expiry_month).padStart(2, '0')}/${pm.expiry_year}`
                    : '—'}
                </td>
                <td>{pm.status}</td>
                <td>{pm.is_default ? 'default' : 'no'}</td>
                <td>{when(pm.last_used)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function HistorySection({ history, customerId, before }: { history: History; customerId: string; before?: string }) {
  const page = (cursor: string) => `/console/customers/${customerId}?before=${encodeURIComponent(cursor)}#history`;
  return (
    <section id="history" aria-labelledby="history-title">
      <h2 id="history-title">History</h2>
      {history.data.length === 0 ? (
        <p>{before ? 'No older events.' : 'No events.'}</p>
      ) : (
        <table>
          <caption>{before ? 'Earlier events, newest first' : 'Events, newest first'}</caption>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">What happened</th>
              <th scope="col">Event</th>
            </tr>
          </thead>
          <tbody>
            {history.data.map((e) => (
              <tr>
                <th scope="row">{when(e.occurred_at)}</th>
                <td>{e.summary}</td>
                <td>{e.type}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {before || history.next_cursor ? (
        <nav class="pager" aria-label="History pages">
          {before ? <a href={`/console/customers/${customerId}#history`}>Newest events</a> : null}
          {history.next_cursor ? <a href={page(history.next_cursor)}>Older events</a> : null}
        </nav>
      ) : null}
    </section>
  );
}

/** A part's details in words (for those who decide merges: ops and identity:merge). */
function detailsInWords(details: ScorePart['details']): string | null {
  const d = details as Record<string, unknown>;
  const shared =
    typeof d.shared_by === 'number' ? `held by ${d.shared_by}${d.shared_beyond_limit ? '+' : ''} customers` : null;
  if ('this' in d && 'other' in d && 'compared' in d) {
    const side = (s: { type: string; city: string | null; country: string }) =>
      `${s.type} in ${[s.city, s.country].filter(Boolean).join(', ')}`;
    const a = d as { this: Parameters<typeof side>[0]; other: Parameters<typeof side>[0] };
    return [`this record: ${side(a.this)}`, `the other: ${side(a.other)}`, shared].filter(Boolean).join('; ');
  }
  if ('this' in d && 'other' in d) {
    const c = d as { this: Parameters<typeof cardInWords>[0]; other: Parameters<typeof cardInWords>[0] };
    return [`this record: ${cardInWords(c.this)}`, `the other: ${cardInWords(c.other)}`, shared]
      .filter(Boolean)
      .join('; ');
  }
  if ('device_id' in d) return shared;
  if ('type' in d && 'verified' in d)
    return `${String(d.type).replace(/_/g, ' ')}, ${String(d.verified).replace(/_/g, ' ')}`;
  return null;
}

function MatchesSection(props: {
  matches: Matches;
  customerId: string;
  session: ConsoleSession;
  may: (action: string) => boolean;
}) {
  const { matches, customerId, session, may } = props;
  const p = session.principal;
  const withDetails = p.scopes.has('ops') || p.scopes.has('identity:merge');
  const propose = may('merge-propose');
  const back = `/console/customers/${customerId}`;
  return (
    <section id="possible-matches" aria-labelledby="matches-title">
      <h2 id="matches-title">Possible matches</h2>
      {matches.data.length === 0 ? (
        <p>No other customer looks like the same person.</p>
      ) : (
        <table>
          <caption>Customers this one may be, the highest score first</caption>
          <thead>
            <tr>
              <th scope="col">Customer</th>
              <th scope="col">Status</th>
              <th scope="col">Score</th>
              <th scope="col">Evidence</th>
              {propose ? <th scope="col">Merge</th> : null}
            </tr>
          </thead>
          <tbody>
            {matches.data.map((m) => (
              <tr>
                <th scope="row">
                  <a href={`/console/customers/${m.customer_id}`}>{`Customer ${m.customer_id}`}</a>
                </th>
                <td>{m.status}</td>
                <td>{`${m.score} of 100`}</td>
                <td>
                  <ul>
                    {m.parts.map((part) => {
                      const more = withDetails ? detailsInWords(part.details) : null;
                      return <li>{`${part.reason} (${part.points} points)${more ? ` — ${more}` : ''}`}</li>;
                    })}
                  </ul>
                  {m.found_at ? <p class="hint">{`Noted by an onboarding on ${when(m.found_at)}.`}</p> : null}
                </td>
                {propose ? (
                  <td>
                    <ActionForm
                      session={session}
                      action="merge-propose"
                      fields={{ survivor_id: customerId, merged_id: m.customer_id }}
                      label="Propose merging it into this customer"
                      back={back}
                    >
                      {p.scopes.has('ops') ? (
                        <>
                          <label for={`consent-${m.customer_id}`}>How it is decided</label>
                          <select id={`consent-${m.customer_id}`} name="consent">
                            <option value="yes" selected>
                              Ask both customers to consent
                            </option>
                            <option value="no">Ops decide alone</option>
                          </select>
                        </>
                      ) : null}
                      <label for={`merge-reason-${m.customer_id}`}>Reason (optional)</label>
                      <input
                        id={`merge-reason-${m.customer_id}`}
                        name="reason"
                        type="text"
                        maxlength={500}
                        autocomplete="off"
                      />
                    </ActionForm>
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function CustomerPage(props: {
  deps: ApiDeps;
  data: CustomerPageData;
  session: ConsoleSession;
  may: (action: string) => boolean;
  before?: string | undefined;
  mergedFrom?: string | undefined;
}) {
  const { deps, data, session, may, before, mergedFrom } = props;
  const id = data.profile.customer_id;
  return (
    <Page title={`Customer ${id}`} session={session} scripts={['cytoscape.min.js', 'graph.js']}>
      <nav aria-label="On this page" class="toc">
        <a href="#profile">Profile</a> <a href="#graph">Identity graph</a> <a href="#wallet">Wallet</a>{' '}
        {data.history ? <a href="#history">History</a> : null} <a href="#possible-matches">Possible matches</a>{' '}
        <a href="#workflows">Workflows</a> {data.history ? <a href="#contests">Contested entries</a> : null}
      </nav>
      <ProfileSection profile={data.profile} deps={deps} {...(mergedFrom ? { mergedFrom } : {})} />
      <GraphSection graph={data.graph} trustThreshold={deps.policy.trustThreshold} />
      <WalletSection wallet={data.wallet} />
      {data.history ? <HistorySection history={data.history} customerId={id} {...(before ? { before } : {})} /> : null}
      <MatchesSection matches={data.matches} customerId={id} session={session} may={may} />
      <WorkflowsSection
        deps={deps}
        workflows={data.workflows}
        session={session}
        may={may}
        back={`/console/customers/${id}`}
      />
      {data.history ? (
        <section id="contests" aria-labelledby="contests-title">
          <h2 id="contests-title">Contested entries</h2>
          {raw(data.contests)}
        </section>
      ) : null}
    </Page>
  );
}
