/**
 * Finding a customer in the console (GET /console/search): by customer id, email, phone, device
 * fingerprint, a recovery's payment id or a fraud outcome's id. Exact lookups only — an index seek
 * in the graph (email and phone normalised as onboarding does), or the workflow of that id in
 * Temporal, whose `PersonaCustomerId` names its customer — never a substring scan.
 */
import { WorkflowNotFoundError } from '@temporalio/client';
import { z } from 'zod';
import {
  findCustomerById,
  findCustomerByIdentifier,
  findCustomersByFingerprint,
  type CustomerHit,
} from '../../graph/console';
import { InvalidInputError } from '../../graph/errors';
import { normaliseIdentifier } from '../../graph/identity';
import { fraudOutcomeWorkflowId } from '../../temporal/fraud';
import { recoveryWorkflowId } from '../../temporal/recovery';
import { personaCustomerId } from '../../temporal/searchAttributes';
import type { ApiDeps } from '../deps';
import { maskEmail, maskOpaque, maskPhone } from './mask';
import { CsrfField, Page } from './kit';
import type { ConsoleSession } from './session';

export const SEARCH_KINDS = ['id', 'email', 'phone', 'fingerprint', 'payment', 'fraud_outcome'] as const;
export type SearchKind = (typeof SEARCH_KINDS)[number];

const KIND_LABEL: Record<SearchKind, string> = {
  id: 'Customer id',
  email: 'Email address',
  phone: 'Phone number',
  fingerprint: 'Device fingerprint',
  payment: 'Payment id of a recovery',
  fraud_outcome: 'Fraud outcome id',
};

/** How many customers of one device a search lists (the count says how many there are). */
export const SEARCH_LIST_LIMIT = 50;

/** A payment id or a fraud outcome id, as the REST api takes them. */
const WORKFLOW_KEY = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
const uuid = z.uuid();

export type SearchResult =
  | { kind: 'one'; customerId: string }
  | { kind: 'many'; hits: CustomerHit[]; total: number; what: string }
  | { kind: 'none'; message: string };

/** The customer a workflow was started for (its `PersonaCustomerId`), or null when there is no such workflow. */
async function customerOfWorkflow(deps: ApiDeps, workflowId: string): Promise<string | null> {
  try {
    const described = await deps.temporal.client.workflow.getHandle(workflowId).describe();
    return described.typedSearchAttributes.get(personaCustomerId) ?? null;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}

/** The search's kind from the query string: one of SEARCH_KINDS, else InvalidInputError naming `by`. */
export function searchKindOf(value: string | undefined): SearchKind {
  if (value === undefined || value === '') return 'email';
  if ((SEARCH_KINDS as readonly string[]).includes(value)) return value as SearchKind;
  throw new InvalidInputError('by', `must be one of ${SEARCH_KINDS.join(', ')}`);
}

/**
 * Finds the customer(s) for an exact value of one kind. InvalidInputError (field `q`) when the
 * value cannot be of that kind (not an email, not a phone number, not a UUID, …).
 */
export async function searchCustomers(deps: ApiDeps, by: SearchKind, raw: string): Promise<SearchResult> {
  const q = raw.trim();
  if (!q) throw new InvalidInputError('q', 'enter what to search for');
  if (q.length > 512) throw new InvalidInputError('q', 'at most 512 characters');
  const g = deps.graph;
  const one = (hit: CustomerHit | null, none: string): SearchResult =>
    hit ? { kind: 'one', customerId: hit.id } : { kind: 'none', message: none };
  switch (by) {
    case 'id':
      if (!uuid.safeParse(q).success) throw new InvalidInputError('q', 'not a customer id (a UUID)');
      return one(await findCustomerById(g, q.toLowerCase()), 'No customer has this id.');
    case 'email': {
      const value = normaliseIdentifier('email', q, g.policy.defaultPhoneRegion, 'q');
      return one(
        await findCustomerByIdentifier(g, 'email', value),
        `No customer has the email address ${maskEmail(value)}.`,
      );
    }
    case 'phone': {
      const value = normaliseIdentifier('phone_number', q, g.policy.defaultPhoneRegion, 'q');
      return one(
        await findCustomerByIdentifier(g, 'phone_number', value),
        `No customer has the phone number ${maskPhone(value)}.`,
      );
    }
    case 'fingerprint': {
      const found = await findCustomersByFingerprint(g, q, SEARCH_LIST_LIMIT);
      if (!found || found.hits.length === 0)
        return { kind: 'none', message: `No customer logs in from a device with fingerprint ${maskOpaque(q)}.` };
      if (found.total === 1 && found.hits.length === 1)
        return { kind: 'one', customerId: (found.hits[0] as CustomerHit).id };
      return { kind: 'many', hits: found.hits, total: found.total, what: `device ${maskOpaque(q)}` };
    }
    case 'payment':
    case 'fraud_outcome': {
      if (!WORKFLOW_KEY.test(q)) throw new InvalidInputError('q', 'must be 1–128 letters, digits and _ . : -');
      const recovery = by === 'payment';
      const customerId = await customerOfWorkflow(deps, recovery ? recoveryWorkflowId(q) : fraudOutcomeWorkflowId(q));
      return customerId
        ? { kind: 'one', customerId }
        : {
            kind: 'none',
            message: recovery ? 'No payment recovery has this payment id.' : 'No fraud outcome has this id.',
          };
    }
  }
}

/**
 * The search page: the form, and a list of customers, a "nothing found" or the form's problem. The
 * value searched for is given back in the form only when it has a problem (to be corrected): a
 * page never holds a whole identifier.
 */
export function SearchPage(props: {
  session: ConsoleSession;
  by: SearchKind;
  q: string;
  result?: SearchResult | undefined;
  problem?: InvalidInputError | undefined;
}) {
  const { by, q, result, problem } = props;
  const problemId = 'search-problem';
  return (
    <Page title="Find a customer" session={props.session}>
      <form method="post" action="/console/search" class="search" role="search" aria-label="Find a customer">
        <CsrfField session={props.session} />
        <label for="search-by">Search by</label>
        <select id="search-by" name="by">
          {SEARCH_KINDS.map((k) => (
            <option value={k} selected={k === by}>
              {KIND_LABEL[k]}
            </option>
          ))}
        </select>
        <label for="search-q">Value (exact; email and phone are normalised)</label>
        <input
          id="search-q"
          name="q"
          type="search"
          value={problem ? q : ''}
          required
          maxlength={512}
          autocomplete="off"
          spellcheck={false}
          aria-invalid={problem ? 'true' : undefined}
          aria-describedby={problem ? problemId : undefined}
        />{' '}
        <button type="submit">Find</button>
      </form>
      {problem ? (
        <p class="problem" role="alert" id={problemId}>
          {problem.field === 'q' ? `The value (q): ${problem.reason}.` : `${problem.field}: ${problem.reason}.`}
        </p>
      ) : null}
      {result?.kind === 'none' ? (
        <p class="outcome" role="status">
          {result.message}
        </p>
      ) : null}
      {result?.kind === 'many' ? (
        <section aria-labelledby="results-title">
          <h2 id="results-title">{`${result.total} customers use ${result.what}`}</h2>
          {result.total > result.hits.length ? (
            <p class="hint">{`The first ${result.hits.length} are listed.`}</p>
          ) : null}
          <table>
            <caption>Customers found</caption>
            <thead>
              <tr>
                <th scope="col">Customer</th>
                <th scope="col">Status</th>
                <th scope="col">Segment</th>
              </tr>
            </thead>
            <tbody>
              {result.hits.map((h) => (
                <tr>
                  <th scope="row">
                    <a href={`/console/customers/${h.id}`}>{`Customer ${h.id}`}</a>
                  </th>
                  <td>{h.merged_into ? `merged into ${h.merged_into}` : h.status}</td>
                  <td>{h.segment ?? '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ) : null}
    </Page>
  );
}
