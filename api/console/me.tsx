/**
 * The customer's own page (/console/me, a customer's own token: scope `self`, `sub` = the
 * customer): their profile, wallet, devices, addresses and history in words (the sections:
 * api/console/meSections.tsx), and what they may do about each (api/console/meActions.ts) —
 * remove a card or choose the default, remove a device or an address that is not theirs any
 * more, contest a history entry (a new event ops read on the customer page, nothing rewritten),
 * erase their data — and their export as a download (GET /console/me/export).
 *
 * A merged record's own token reaches only the tombstone: a page saying so, nothing of the
 * survivor's (the person who held the record may not be the survivor's owner). Every
 * identifier is masked (mask.ts); no payment token is ever read. Any other session (ops, an
 * agent) has no "me": 403.
 */
import { Hono, type Context } from 'hono';
import { getAddressesByCustomer } from '../../graph/addresses';
import { getDevicesByCustomer } from '../../graph/devices';
import { survivorOf } from '../../graph/mergedRecords';
import { AuthError } from '../auth';
import type { ApiDeps } from '../deps';
import { getProfile, listWallet } from '../services/customers';
import { customerHistory } from '../services/events';
import { mergedRecordRefusal } from '../services/mergedIds';
import { exportBody, exportCustomer } from '../services/privacy';
import { Page, render, type ConsoleAction } from './kit';
import { actor, meActions } from './meActions';
import {
  AddressesSection,
  allowedFor,
  DevicesSection,
  erasureWords,
  HistorySection,
  PrivacySections,
  ProfileSection,
  WalletSection,
} from './meSections';
import { durationWords, HISTORY_PAGE, selfOf, SIGN_IN_AGAIN } from './meWords';
import type { ConsoleSession } from './session';

async function mePage(deps: ApiDeps, customerId: string, session: ConsoleSession, before: string | undefined) {
  const g = deps.graph;
  const profile = await getProfile(g, customerId);
  // A merge that committed since the route's check: the survivor's data is not this token's.
  if (profile.merged_into) throw mergedRecordRefusal();
  const id = customerId;
  const [wallet, devices, addresses, history, erasure] = await Promise.all([
    listWallet(g, id),
    getDevicesByCustomer(g, id),
    getAddressesByCustomer(g, id),
    customerHistory(deps, id, before, HISTORY_PAGE, 'customer'),
    erasureWords(deps, customerId),
  ]);
  // The wallet and history follow a merge that committed since the profile was read: never shown.
  if (wallet.merged_into || history.merged_into) throw mergedRecordRefusal();
  const allowed = allowedFor(profile);
  const back = before ? `/console/me?before=${encodeURIComponent(before)}` : '/console/me';
  const props = { session, allowed, back };
  return (
    <Page title="Your data" session={session}>
      <ProfileSection profile={profile} />
      <WalletSection wallet={wallet.data} {...props} />
      <DevicesSection devices={devices} threshold={deps.policy.trustThreshold} {...props} />
      <AddressesSection addresses={addresses} {...props} />
      <HistorySection history={history} before={before} {...props} />
      <PrivacySections deps={deps} erasure={erasure} status={profile.status} {...props} />
    </Page>
  );
}

/** A merged record's own session: the record holds nothing now; sign in as the survivor. */
async function mergedRecord(deps: ApiDeps, c: Context, session: ConsoleSession, id: string) {
  if (!(await survivorOf(deps.graph, id))?.merged_into) return null;
  return render(
    c,
    <Page title="This record was merged" session={session}>
      <p class="problem" role="alert">
        {mergedRecordRefusal().message.replace(/^Forbidden: /, '')}
      </p>
      <p>If that record is yours too, sign in to it; if it is not, support can undo the merge.</p>
    </Page>,
    403,
  );
}

function notYours(c: Context, session: ConsoleSession) {
  return render(
    c,
    <Page title="Forbidden" session={session}>
      <p class="problem" role="alert">
        This page is a customer’s own: it needs a customer’s own token (scope self). Your token has no page of its own.
      </p>
      <p>
        <a href="/console">Back to the console</a>
      </p>
    </Page>,
    403,
  );
}

export function meConsole(deps: ApiDeps): { routes: Hono; actions: ConsoleAction[] } {
  const routes = new Hono();

  routes.get('/console/me', async (c) => {
    const session = c.get('consoleSession');
    const id = selfOf(session.principal);
    if (!id) return notYours(c, session);
    const merged = await mergedRecord(deps, c, session, id);
    if (merged) return merged;
    c.header('Cache-Control', 'no-store');
    return render(c, await mePage(deps, id, session, c.req.query('before') || undefined));
  });

  routes.get('/console/me/export', async (c) => {
    const session = c.get('consoleSession');
    const id = selfOf(session.principal);
    if (!id) return notYours(c, session);
    const merged = await mergedRecord(deps, c, session, id);
    if (merged) return merged;
    let pieces;
    try {
      pieces = await exportCustomer(deps, id, actor(session));
    } catch (err) {
      if (!(err instanceof AuthError && err.hint.type === 'fresh-sign-in-required')) throw err;
      return render(
        c,
        <Page title="Sign in again" session={session}>
          <p class="problem" role="alert">
            Downloading your data needs a sign-in within the last {durationWords(deps.auth.recentAuthSeconds)}, and
            yours is older.
          </p>
          <p>
            <a href={SIGN_IN_AGAIN}>Sign in again</a>, then download your data from your page.
          </p>
        </Page>,
        401,
      );
    }
    const name = `persona-export-${id.replace(/[^\w-]/g, '')}.json`;
    return c.body(exportBody(deps, pieces), 200, {
      'content-type': 'application/json; charset=utf-8',
      'content-disposition': `attachment; filename="${name}"`,
      'cache-control': 'no-store',
    });
  });

  return { routes, actions: meActions() };
}
