/**
 * The sections of the customer's own page (api/console/me.tsx), each a <section> with its <h2> and
 * the id the browser tests find it by: #profile, #wallet, #devices, #addresses, #history (with a
 * contest form per entry), #export and #erasure. Every identifier masked (mask.ts), meaning never
 * by colour alone, every control labelled; an action is shown only when the customer may take it
 * now (its guard refuses it anyway otherwise).
 */
import { randomUUID } from 'node:crypto';
import type { Child } from 'hono/jsx';
import { CONTEST_WORDS_MAX } from '../../graph/audit';
import { NotFoundError } from '../../graph/errors';
import type { Address, CustomerDevice } from '../../graph/model';
import type { ApiDeps } from '../deps';
import type { getProfile } from '../services/customers';
import type { HistoryItem } from '../services/events';
import { withDeadline } from '../../runtime/dependencies';
import { erasureStatus } from '../services/privacy';
import { ActionForm, when } from './kit';
import { maskIdentifier, maskOpaque, maskStreet } from './mask';
import { cardWords, durationWords, expiryWords, signInTooOld, SIGN_IN_AGAIN, trustWords, type Card } from './meWords';
import type { ConsoleSession } from './session';

export type Profile = Awaited<ReturnType<typeof getProfile>>;

/** What the customer may do now (the guards refuse the rest anyway; this only leaves it unshown). */
export interface Allowed {
  /** Wallet, devices, addresses: an active customer (a merged record has no page: api/console/me.tsx). */
  change: boolean;
  /** Contest an entry: active or suspended. */
  contest: boolean;
  /** Export and erasure (the step-up aside). */
  export: boolean;
  erase: boolean;
}

export function allowedFor(profile: Profile): Allowed {
  const active = profile.status === 'active';
  return {
    change: active,
    contest: active || profile.status === 'suspended',
    export: profile.status !== 'suspended',
    erase: active,
  };
}

export function ProfileSection({ profile }: { profile: Profile }) {
  return (
    <section id="profile" aria-labelledby="profile-h">
      <h2 id="profile-h">Profile</h2>
      {profile.status === 'suspended' ? (
        <p class="problem">
          Your account is suspended: you can read your data and contest an entry of your history, but not change your
          wallet, devices or addresses, download or erase your data. Support can help.
        </p>
      ) : null}
      {profile.status === 'erased' ? <p class="problem">Your data was erased at your request.</p> : null}
      <dl class="facts">
        <dt>Status</dt>
        <dd>{profile.status}</dd>
        <dt>Segment</dt>
        <dd>{profile.segment ?? '—'}</dd>
        <dt>Lifetime value</dt>
        <dd>{profile.ltv === null ? '—' : `${profile.ltv} ${profile.ltv_currency}`}</dd>
        <dt>Customer since</dt>
        <dd>{profile.acquisition_date ?? when(profile.created_at)}</dd>
        <dt>Contact details</dt>
        <dd>
          {profile.digital_identifiers.length === 0 ? (
            'none'
          ) : (
            <ul>
              {profile.digital_identifiers.map((i) => (
                <li>
                  {i.type === 'email' ? 'Email ' : 'Phone '}
                  {maskIdentifier(i.type, i.value)}
                  {i.is_verified ? ' (verified)' : ' (not verified)'}
                </li>
              ))}
            </ul>
          )}
        </dd>
      </dl>
    </section>
  );
}

interface SectionProps {
  session: ConsoleSession;
  allowed: Allowed;
  back: string;
}

/**
 * One list of the customer's things (cards, devices, addresses): a table with a column per field
 * and, while the customer may change them, one of actions per row; a sentence when there is none.
 */
function ThingsList<T>(props: {
  id: string;
  title: string;
  none: string;
  items: T[];
  columns: [header: string, cell: (item: T) => Child][];
  allowed: Allowed;
  actionsHeader: string;
  actions: (item: T) => Child;
}) {
  const { id, items, columns, allowed } = props;
  return (
    <section id={id} aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`}>{props.title}</h2>
      {items.length === 0 ? (
        <p>{props.none}</p>
      ) : (
        <table>
          <thead>
            <tr>
              {columns.map(([header]) => (
                <th scope="col">{header}</th>
              ))}
              {allowed.change ? <th scope="col">{props.actionsHeader}</th> : null}
            </tr>
          </thead>
          <tbody>
            {items.map((item) => (
              <tr>
                {columns.map(([, cell]) => (
                  <td>{cell(item)}</td>
                ))}
                {allowed.change ? <td>{props.actions(item)}</td> : null}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function WalletSection({ wallet, session, allowed, back }: SectionProps & { wallet: Card[] }) {
  return (
    <ThingsList
      id="wallet"
      title="Wallet"
      none="No payment methods."
      items={wallet}
      allowed={allowed}
      columns={[
        ['Payment method', cardWords],
        ['Expires', expiryWords],
        ['Status', (card) => <span class={card.status === 'active' ? 'badge good' : 'badge bad'}>{card.status}</span>],
        ['Default', (card) => (card.is_default ? 'Default' : 'No')],
      ]}
      actionsHeader="Actions"
      actions={(card) => (
        <>
          {!card.is_default && card.status === 'active' ? (
            <ActionForm
              session={session}
              action="default-card"
              fields={{ payment_method_id: card.id }}
              label={`Make ${cardWords(card)} the default`}
              back={back}
            />
          ) : null}
          <ActionForm
            session={session}
            action="remove-card"
            fields={{ payment_method_id: card.id }}
            label={`Remove ${cardWords(card)}`}
            back={back}
            danger
          />
        </>
      )}
    />
  );
}

/** The devices the customer has not removed: a removed one is kept, marked, for fraud checks (graph/devices.ts). */
export function DevicesSection({
  devices,
  threshold,
  session,
  allowed,
  back,
}: SectionProps & { devices: CustomerDevice[]; threshold: number }) {
  return (
    <ThingsList
      id="devices"
      title="Devices"
      none="No devices."
      items={devices}
      allowed={allowed}
      columns={[
        ['Device', (d) => maskOpaque(d.fingerprint)],
        ['Last seen', (d) => when(d.last_login)],
        ['Sign-ins', (d) => d.login_count],
        ['Trust', (d) => trustWords(d.trust_score, threshold)],
      ]}
      actionsHeader="Not yours any more?"
      actions={(d) => (
        <ActionForm
          session={session}
          action="remove-device"
          fields={{ device_id: d.id }}
          label={`Remove device ${maskOpaque(d.fingerprint)}`}
          back={back}
          danger
        />
      )}
    />
  );
}

/** The addresses the customer has not removed (a removed one is kept, marked: graph/addresses.ts). */
export function AddressesSection({ addresses, session, allowed, back }: SectionProps & { addresses: Address[] }) {
  return (
    <ThingsList
      id="addresses"
      title="Addresses"
      none="No addresses."
      items={addresses}
      allowed={allowed}
      columns={[
        ['Street', (a) => maskStreet(a.street1)],
        ['City', (a) => a.city],
        ['Country', (a) => a.country],
        ['Kind', (a) => `${a.type}${a.is_default ? ' (default)' : ''}`],
      ]}
      actionsHeader="Not yours any more?"
      actions={(a) => (
        <ActionForm
          session={session}
          action="remove-address"
          fields={{ address_id: a.id }}
          label={`Remove address ${maskStreet(a.street1)}, ${a.city}`}
          back={back}
          danger
        />
      )}
    />
  );
}

export function HistorySection({
  history,
  before,
  session,
  allowed,
  back,
}: SectionProps & { history: { data: HistoryItem[]; next_cursor: string | null }; before: string | undefined }) {
  return (
    <section id="history" aria-labelledby="history-h">
      <h2 id="history-h">History</h2>
      <p class="hint">
        What happened to your account, newest first. Think an entry is wrong? Contest it: your words are added for our
        team, and the entry stays as it is.
      </p>
      {history.data.length === 0 ? (
        <p>No entries.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">What happened</th>
              {allowed.contest ? <th scope="col">Wrong?</th> : null}
            </tr>
          </thead>
          <tbody>
            {history.data.map((e) => (
              <tr>
                <td>{when(e.occurred_at)}</td>
                <td class="words">{e.summary}</td>
                {allowed.contest ? (
                  <td>
                    {e.type === 'HistoryEntryContested' ? (
                      '—'
                    ) : (
                      <details>
                        <summary>Contest this entry</summary>
                        <ActionForm
                          session={session}
                          action="contest"
                          fields={{ event_id: e.id, request_id: randomUUID() }}
                          label="Send"
                          back={back}
                        >
                          <label for={`words-${e.id}`}>What is wrong?</label>
                          <textarea id={`words-${e.id}`} name="words" rows={3} required maxlength={CONTEST_WORDS_MAX} />
                        </ActionForm>
                      </details>
                    )}
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {before || history.next_cursor ? (
        <nav class="pager" aria-label="History pages">
          {before ? <a href="/console/me#history">Newest entries</a> : null}
          {history.next_cursor ? (
            <a href={`/console/me?before=${encodeURIComponent(history.next_cursor)}#history`}>Older entries</a>
          ) : null}
        </nav>
      ) : null}
    </section>
  );
}

function StepUpHint({ deps, session }: { deps: ApiDeps; session: ConsoleSession }) {
  if (!signInTooOld(session.principal, deps.auth.recentAuthSeconds)) return null;
  return (
    <p class="hint">
      This step needs a sign-in within the last {durationWords(deps.auth.recentAuthSeconds)}, and yours is older:{' '}
      <a href={SIGN_IN_AGAIN}>sign in again</a> first.
    </p>
  );
}

const ERASURE_STATE: Record<string, string> = {
  starting: 'Your erasure has started.',
  erasing: 'Your erasure is under way.',
  waiting_for_fraud_review: 'Your erasure waits for a review of your account to end, then goes on by itself.',
  done: 'Your data was erased.',
  refused: 'Your erasure was refused because your account is suspended. Support can help.',
  stopped: 'Your last erasure stopped before it erased anything: you can ask again.',
};

/** How long the page waits for Temporal's word on the erasure before it says it cannot tell. */
const ERASURE_STATUS_MS = 2000;

/**
 * Where the customer's erasure is, in words (never the fraud reviews it waits for, nor ops' reason);
 * null when none was asked for. Temporal away or slow does not hold the page up.
 */
export async function erasureWords(deps: ApiDeps, customerId: string): Promise<string | null> {
  try {
    const status = await withDeadline('temporal', ERASURE_STATUS_MS, () => erasureStatus(deps, customerId));
    return ERASURE_STATE[status.state] ?? `Your erasure: ${status.state}.`;
  } catch (err) {
    if (err instanceof NotFoundError) return null;
    deps.logger.warn({ err }, 'console: could not read the erasure status');
    return 'Where your erasure is cannot be read just now: try again in a moment.';
  }
}

export function PrivacySections(props: SectionProps & { deps: ApiDeps; erasure: string | null; status: string }) {
  const { deps, session, allowed, erasure } = props;
  return (
    <>
      <section id="export" aria-labelledby="export-h">
        <h2 id="export-h">Download your data</h2>
        <p>
          Everything Persona holds about you — profile, wallet (never a payment token), devices, addresses and your
          whole history — as one JSON file.
        </p>
        {allowed.export ? (
          <>
            <StepUpHint deps={deps} session={session} />
            <p>
              <a href="/console/me/export" download="">
                Download my data (JSON)
              </a>
            </p>
          </>
        ) : (
          <p>Not while your account is suspended. Support can help.</p>
        )}
      </section>
      <section id="erasure" aria-labelledby="erasure-h">
        <h2 id="erasure-h">Erase your data</h2>
        {erasure ? (
          <p class="erasure-status" role="status">
            {erasure}
          </p>
        ) : null}
        {allowed.erase ? (
          <>
            <p>
              Erasing deletes your personal data for good; you will be asked to confirm, and told exactly what goes.
            </p>
            <StepUpHint deps={deps} session={session} />
            <ActionForm session={session} action="erase" label="Erase my data…" back="/console/me" danger />
          </>
        ) : erasure ? null : (
          <p>Not while your account is {props.status}. Support can help.</p>
        )}
      </section>
    </>
  );
}
