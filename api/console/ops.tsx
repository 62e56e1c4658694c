/**
 * The ops side of the console: find a customer, the customer page, the operations page, and the
 * actions ops decide. Every route needs the scope its REST counterpart needs (a session without it
 * gets the 403 page); the session itself is checked by api/console/app.tsx before these run.
 *
 *   POST /console/search (by, q)     find a customer (api/console/search.tsx); GET shows the form only
 *   GET /console/customers/:id       the customer page (api/console/customerPage.tsx)
 *   GET /console/operations          expiry scan, event relay (ops)
 *   POST /console/actions/<name>     api/console/opsActions.tsx, through app.tsx's confirm-then-act
 */
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { InvalidInputError, NotFoundError } from '../../graph/errors';
import { EXPIRY_SCAN_WORKFLOW_TYPE } from '../../temporal/expiry';
import { AuthError, type Scope } from '../auth';
import type { ApiDeps } from '../deps';
import { relayStatus, type EventRelayView } from '../services/relay';
import { CustomerPage, loadCustomerPage } from './customerPage';
import { temporalHistoryUrl } from './customerWorkflows';
import { ActionForm, can, formOf, Page, render, when, type ConsoleAction } from './kit';
import { mayTake, opsActions } from './opsActions';
import { SearchPage, searchCustomers, searchKindOf, type SearchKind } from './search';
import type { ConsoleSession } from './session';

const uuid = z.uuid();

/** The 403 the REST routes answer, as the console's Forbidden page. */
function requireScopes(session: ConsoleSession, scopes: Scope[]): void {
  if (!can(session.principal, scopes))
    throw new AuthError(403, `Forbidden: this page needs the scope ${scopes.join(' or ')}.`);
}

/** Recent expiry scans (the newest first), for the operations page; null when Temporal does not answer. */
async function recentExpiryScans(deps: ApiDeps) {
  const { client } = deps.temporal;
  const scans: { workflowId: string; runId: string; status: string; started: string; closed: string | null }[] = [];
  try {
    await client.connection.withDeadline(Date.now() + deps.limits.requestDeadlineMs / 2, async () => {
      for await (const wf of client.workflow.list({
        query: `WorkflowType = '${EXPIRY_SCAN_WORKFLOW_TYPE}'`,
        pageSize: 10,
      })) {
        scans.push({
          workflowId: wf.workflowId,
          runId: wf.runId,
          status: wf.status.name.toLowerCase().replace(/_/g, ' '),
          started: wf.startTime.toISOString(),
          closed: wf.closeTime?.toISOString() ?? null,
        });
        if (scans.length === 10) break;
      }
    });
  } catch (err) {
    deps.logger.warn({ err }, 'console: the expiry scans could not be listed');
    return null;
  }
  return scans.sort((a, b) => b.started.localeCompare(a.started));
}

type ExpiryScans = Awaited<ReturnType<typeof recentExpiryScans>>;

function OperationsPage(props: {
  deps: ApiDeps;
  session: ConsoleSession;
  relay: EventRelayView | null;
  scans: ExpiryScans;
}) {
  const { deps, session, relay, scans } = props;
  const back = '/console/operations';
  return (
    <Page title="Operations" session={session}>
      <ExpiryScanSection deps={deps} session={session} scans={scans} back={back} />
      <EventRelaySection deps={deps} session={session} relay={relay} back={back} />
    </Page>
  );
}

function ExpiryScanSection(props: { deps: ApiDeps; session: ConsoleSession; scans: ExpiryScans; back: string }) {
  const { deps, session, scans, back } = props;
  return (
    <section id="expiry-scan" aria-labelledby="expiry-title">
      <h2 id="expiry-title">Card-expiry scan</h2>
      <p>
        The scan runs daily on its schedule. Start one now to warn customers whose default card expires soon and mark
        expired cards at once.
      </p>
      <ActionForm session={session} action="expiry-scan" label="Start an expiry scan" back={back}>
        <label for="as-of">As of (optional, YYYY-MM-DD; today by default and at the latest)</label>
        <input id="as-of" name="as_of" type="date" autocomplete="off" />
        <label for="scan-reason">Why now (kept with the scan)</label>
        <input id="scan-reason" name="reason" required maxlength={500} autocomplete="off" />
      </ActionForm>
      {scans === null ? (
        <p class="problem">Temporal did not answer in time: the recent scans are not listed now.</p>
      ) : scans.length === 0 ? (
        <p>No expiry scan has run yet.</p>
      ) : (
        <table>
          <caption>Recent expiry scans</caption>
          <thead>
            <tr>
              <th scope="col">Workflow</th>
              <th scope="col">Status</th>
              <th scope="col">Started</th>
              <th scope="col">Closed</th>
            </tr>
          </thead>
          <tbody>
            {scans.map((s) => (
              <tr>
                <th scope="row">
                  <a class="temporal-link" href={temporalHistoryUrl(deps, s.workflowId, s.runId)}>
                    {s.workflowId}
                  </a>
                </th>
                <td>{s.status}</td>
                <td>{when(s.started)}</td>
                <td>{when(s.closed)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function EventRelaySection(props: {
  deps: ApiDeps;
  session: ConsoleSession;
  relay: EventRelayView | null;
  back: string;
}) {
  const { deps, session, relay, back } = props;
  return (
    <section id="event-relay" aria-labelledby="relay-title">
      <h2 id="relay-title">Event relay</h2>
      {relay === null ? (
        <p>The event relay has not run yet.</p>
      ) : (
        <>
          <RelayFacts deps={deps} relay={relay} />
          {relay.parked_count > 0 ? (
            <ActionForm session={session} action="relay-retry" label="Retry every parked event" back={back} />
          ) : null}
          {relay.parked.length > 0 ? <ParkedEvents session={session} relay={relay} back={back} /> : null}
        </>
      )}
    </section>
  );
}

function RelayFacts({ deps, relay }: { deps: ApiDeps; relay: EventRelayView }) {
  return (
    <dl class="facts">
      <dt>Workflow</dt>
      <dd>
        <a class="temporal-link" href={temporalHistoryUrl(deps, relay.workflow_id)}>
          {relay.workflow_id}
        </a>
      </dd>
      <dt>Running</dt>
      <dd>{relay.running === null ? 'unknown (Temporal did not answer)' : relay.running ? 'yes' : 'no'}</dd>
      <dt>Delivered</dt>
      <dd>{relay.delivered.toLocaleString('en')}</dd>
      <dt>Last delivery</dt>
      <dd>{when(relay.last_delivery_at)}</dd>
      <dt>Blocked</dt>
      <dd>
        {relay.blocked
          ? `on event ${relay.blocked.event_id} since ${when(relay.blocked.since)} ` +
            `(${relay.blocked.attempts} attempts): ${relay.blocked.error}`
          : 'no'}
      </dd>
      <dt>Parked</dt>
      <dd>{relay.parked_count.toLocaleString('en')}</dd>
    </dl>
  );
}

function ParkedEvents({ session, relay, back }: { session: ConsoleSession; relay: EventRelayView; back: string }) {
  return (
    <table>
      <caption>{`Parked events, the oldest first (up to ${relay.parked.length})`}</caption>
      <thead>
        <tr>
          <th scope="col">Event</th>
          <th scope="col">Type</th>
          <th scope="col">Parked</th>
          <th scope="col">Attempts</th>
          <th scope="col">The subscriber’s answer</th>
          <th scope="col">Retry</th>
        </tr>
      </thead>
      <tbody>
        {relay.parked.map((p) => (
          <tr>
            <th scope="row">{p.event.id}</th>
            <td>{p.event.type}</td>
            <td>{when(p.parked_at)}</td>
            <td>{p.attempts}</td>
            <td>{p.error}</td>
            <td>
              <ActionForm
                session={session}
                action="relay-retry"
                fields={{ event_id: p.event.id }}
                label="Retry this event"
                back={back}
              />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function opsConsole(deps: ApiDeps): { routes: Hono; actions: ConsoleAction[] } {
  const routes = new Hono();
  const actions = opsActions();

  // The form posts: an email or phone never lands in a URL (browser history, proxies, the sign-in's
  // `next`). A GET shows the form; with `q` it is refused, the value never echoed.
  const search = async (c: Context, byValue: string | undefined, q: string | undefined) => {
    const session = c.get('consoleSession');
    requireScopes(session, ['customers:read']);
    let by: SearchKind = 'email';
    try {
      by = searchKindOf(byValue);
      if (q === undefined) return await render(c, <SearchPage session={session} by={by} q="" />);
      const result = await searchCustomers(deps, by, q);
      if (result.kind === 'one') return c.redirect(`/console/customers/${result.customerId}`, 303);
      return await render(c, <SearchPage session={session} by={by} q={q} result={result} />);
    } catch (err) {
      if (!(err instanceof InvalidInputError)) throw err;
      return render(c, <SearchPage session={session} by={by} q={q ?? ''} problem={err} />, 400);
    }
  };
  routes.get('/console/search', (c) => {
    if (c.req.query('q') === undefined) return search(c, c.req.query('by'), undefined);
    const session = c.get('consoleSession');
    requireScopes(session, ['customers:read']);
    const problem = new InvalidInputError('q', 'search with the form: a value in the address is kept in logs');
    return render(c, <SearchPage session={session} by="email" q="" problem={problem} />, 400);
  });
  routes.post('/console/search', async (c) => {
    const form = await formOf(c);
    return search(c, form.by, form.q ?? '');
  });

  routes.get('/console/customers/:id', async (c) => {
    const session = c.get('consoleSession');
    requireScopes(session, ['customers:read']);
    const id = c.req.param('id');
    if (!uuid.safeParse(id).success) throw new InvalidInputError('id', 'not a customer id (a UUID)');
    const before = c.req.query('before') || undefined;
    const data = await loadCustomerPage(deps, id, session, before);
    // A merged customer's id: its survivor's page, which says where the visitor came from.
    if (data.profile.merged_into) return c.redirect(`/console/customers/${data.profile.merged_into}?from=${id}`, 303);
    const from = c.req.query('from');
    const mergedFrom = from && uuid.safeParse(from).success && from !== id ? from : undefined;
    return render(
      c,
      <CustomerPage
        deps={deps}
        data={data}
        session={session}
        may={mayTake(actions, session.principal)}
        before={before}
        mergedFrom={mergedFrom}
      />,
    );
  });

  routes.get('/console/operations', async (c) => {
    const session = c.get('consoleSession');
    requireScopes(session, ['ops']);
    const [relay, scans] = await Promise.all([
      relayStatus(deps.graph, deps.temporal.client).catch((err: unknown) => {
        if (err instanceof NotFoundError) return null;
        throw err;
      }),
      recentExpiryScans(deps),
    ]);
    return render(c, <OperationsPage deps={deps} session={session} relay={relay} scans={scans} />);
  });

  return { routes, actions };
}
