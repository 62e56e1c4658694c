/**
 * The console's customer page (GET /console/customers/:id): profile, the identity graph drawn and
 * in a table, wallet, history in words, possible matches, workflows, contested entries. Everything
 * is read at once (one graph read per part, the workflows from Temporal beside them) through the
 * same services as the REST api; every identifier is masked (api/console/mask.ts) and no payment
 * token is ever read. What the session's scopes do not allow is not shown.
 */
import { raw } from 'hono/html';
import { isVip } from '../../graph/context';
import { readCustomerGraph, type CustomerGraph } from '../../graph/console';
import { toMinorUnits } from '../../payments/money';
import type { ApiDeps } from '../deps';
import { getProfile, listWallet, possibleMatches } from '../services/customers';
import { customerHistory } from '../services/events';
import { ContestsSection } from './contests';
import { GraphSection, MatchesSection } from './customerSections';
import { loadCustomerWorkflows, WorkflowsSection, type CustomerWorkflows } from './customerWorkflows';
import { can, Page, when } from './kit';
import type { ConsoleSession } from './session';

export { graphElements, jsonForScript } from './customerSections';

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

// ---- the other sections (the graph and the matches: customerSections.tsx) ----------------------

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
