/**
 * Two sections of the console's customer page (api/console/customerPage.tsx): the identity graph,
 * drawn and in a table, and the possible matches, with the merge ops may propose. Every identifier
 * is masked (api/console/mask.ts).
 */
import { raw } from 'hono/html';
import type { ConsoleCard, ConsoleDevice, CustomerGraph } from '../../graph/console';
import { cardInWords, type EvidencePart } from '../../graph/matchParts';
import type { possibleMatches } from '../services/customers';
import { ActionForm, when } from './kit';
import { maskIdentifier, maskOpaque } from './mask';
import type { ConsoleSession } from './session';

type Matches = Awaited<ReturnType<typeof possibleMatches>>;

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

export function GraphSection({ graph, trustThreshold }: { graph: CustomerGraph; trustThreshold: number }) {
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
  return (
    <section id="graph" aria-labelledby="graph-title">
      <h2 id="graph-title">Identity graph</h2>
      <div id="identity-graph" role="img" aria-label={description} />
      <script type="application/json" id="identity-graph-data">
        {raw(jsonForScript(graphElements(graph)))}
      </script>
      {cut.length > 0 ? <p class="hint">{`Only the first ${graph.cap} ${cut.join(', ')} are shown.`}</p> : null}
      <GraphTable graph={graph} trustThreshold={trustThreshold} />
    </section>
  );
}

/** The graph's table: what the drawing shows, row by row. */
function GraphTable({ graph, trustThreshold }: { graph: CustomerGraph; trustThreshold: number }) {
  const usedOn = (cardId: string) => graph.used_on.filter(([c]) => c === cardId).length;
  return (
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
  );
}

// ---- possible matches --------------------------------------------------------------------------

/** A part's details in words (for those who decide merges: ops and identity:merge). */
function detailsInWords(details: EvidencePart['details']): string | null {
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

export function MatchesSection(props: {
  matches: Matches;
  customerId: string;
  session: ConsoleSession;
  may: (action: string) => boolean;
}) {
  const { matches, customerId, session, may } = props;
  const p = session.principal;
  const withDetails = p.scopes.has('ops') || p.scopes.has('identity:merge');
  const propose = may('merge-propose');
  return (
    <section id="possible-matches" aria-labelledby="matches-title">
      <h2 id="matches-title">Possible matches</h2>
      {matches.data.length === 0 ? (
        <p>No other customer looks like the same person.</p>
      ) : (
        <table>
          <caption>Customers this one may be, the most likely first</caption>
          <thead>
            <tr>
              <th scope="col">Customer</th>
              <th scope="col">Status</th>
              <th scope="col">Probability</th>
              <th scope="col">Evidence</th>
              {propose ? <th scope="col">Merge</th> : null}
            </tr>
          </thead>
          <tbody>
            {matches.data.map((m) => (
              <MatchRow
                match={m}
                customerId={customerId}
                session={session}
                withDetails={withDetails}
                propose={propose}
              />
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** One possible match: who, how likely and why, and the merge ops may propose. */
function MatchRow(props: {
  match: Matches['data'][number];
  customerId: string;
  session: ConsoleSession;
  withDetails: boolean;
  propose: boolean;
}) {
  const { match: m, customerId, session, withDetails, propose } = props;
  return (
    <tr>
      <th scope="row">
        <a href={`/console/customers/${m.customer_id}`}>{`Customer ${m.customer_id}`}</a>
      </th>
      <td>{m.status}</td>
      <td>{`${(m.probability * 100).toFixed(1)} %`}</td>
      <td>
        <ul>
          {m.parts.map((part) => {
            const more = withDetails ? detailsInWords(part.details) : null;
            return <li>{`${part.reason}${more ? ` — ${more}` : ''}`}</li>;
          })}
        </ul>
        {withDetails ? (
          <p class="hint">
            {`The match model (${m.model_version}): ` +
              m.comparisons.map((c) => `${c.reason} (${c.bits > 0 ? '+' : ''}${c.bits} bits)`).join('; ')}
          </p>
        ) : null}
        {m.found_at ? <p class="hint">{`Noted by an onboarding on ${when(m.found_at)}.`}</p> : null}
      </td>
      {propose ? (
        <td>
          <MergeProposal mergedId={m.customer_id} customerId={customerId} session={session} />
        </td>
      ) : null}
    </tr>
  );
}

/** The form that proposes merging the match (`mergedId`) into this customer. */
function MergeProposal({
  mergedId,
  customerId,
  session,
}: {
  mergedId: string;
  customerId: string;
  session: ConsoleSession;
}) {
  const back = `/console/customers/${customerId}`;
  return (
    <ActionForm
      session={session}
      action="merge-propose"
      fields={{ survivor_id: customerId, merged_id: mergedId }}
      label="Propose merging it into this customer"
      back={back}
    >
      {session.principal.scopes.has('ops') ? (
        <>
          <label for={`consent-${mergedId}`}>How it is decided</label>
          <select id={`consent-${mergedId}`} name="consent">
            <option value="yes" selected>
              Ask both customers to consent
            </option>
            <option value="no">Ops decide alone</option>
          </select>
        </>
      ) : null}
      <label for={`merge-reason-${mergedId}`}>Reason (optional)</label>
      <input id={`merge-reason-${mergedId}`} name="reason" type="text" maxlength={500} autocomplete="off" />
    </ActionForm>
  );
}
