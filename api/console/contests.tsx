/**
 * A customer's contested history entries, as ops see them on the customer page (inside its
 * #contests section, which gives the heading): each contest's time, the customer's own words, and
 * the entry it names — when, what kind, and what it says in words. A contest is an event of its
 * own (HistoryEntryContested, written from the customer's page, api/console/me.tsx); the contested
 * entry is never changed. Shown only to ops: contests name history entries and hold the customer's own
 * words, and the history is ops' (as the REST route `GET /customers/{id}/events`).
 */
import type { ApiDeps } from '../deps';
import { historyContests } from '../services/events';
import { can, when } from './kit';
import type { ConsoleSession } from './session';

/** The newest contests shown (a customer with more is told how many are left out: none are lost). */
export const CONTESTS_SHOWN = 50;

export async function ContestsSection(props: { deps: ApiDeps; customerId: string; session: ConsoleSession }) {
  if (!can(props.session.principal, ['ops'])) return null;
  const contests = await historyContests(props.deps, props.customerId, CONTESTS_SHOWN + 1);
  if (contests.length === 0) return <p class="muted">The customer has contested no entry of their history.</p>;
  const shown = contests.slice(0, CONTESTS_SHOWN);
  return (
    <>
      <p>
        {contests.length > CONTESTS_SHOWN
          ? `The ${CONTESTS_SHOWN} newest of the customer’s contests (older ones are in the history).`
          : `${shown.length} ${shown.length === 1 ? 'entry' : 'entries'} contested by the customer, newest first.`}
      </p>
      <table class="contests">
        <thead>
          <tr>
            <th scope="col">Contested</th>
            <th scope="col">Entry contested</th>
            <th scope="col">The customer’s words</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((c) => (
            <tr>
              <td>{when(c.occurred_at)}</td>
              <td>
                {c.entry ? (
                  <>
                    {c.entry.summary}
                    <br />
                    <span class="muted">
                      {when(c.entry.occurred_at)} · {c.entry.type} · entry {c.contested_event_id}
                    </span>
                  </>
                ) : (
                  <span class="muted">entry {c.contested_event_id} (no longer in the log)</span>
                )}
              </td>
              <td class="words">{c.words || '(erased)'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
