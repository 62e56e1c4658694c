/**
 * The actions ops decide in the console, each a `ConsoleAction` (api/console/kit.tsx): allowed by
 * the same rule as its REST route, a confirmation page saying in words what will happen, and a run
 * through the same service the REST route calls — never a second path:
 *
 *   fraud-review     resolveReview        (POST /api/v1/fraud-outcomes/{id}/review, ops)
 *   cancel-recovery  cancelRecovery       (ops, like the recovery's attention route)
 *   expiry-scan      startExpiryScan      (POST /api/v1/admin/expiry-scan, ops)
 *   relay-retry      retryParked          (POST /api/v1/admin/event-relay/retry, ops)
 *   merge-propose    proposeMerge         (POST /api/v1/identity-merges, identity:merge or ops)
 *   merge-undo       undoMerge            (POST /api/v1/identity-merges/{id}/undo, ops)
 */
import { raw } from 'hono/html';
import { z } from 'zod';
import { InvalidInputError, InvalidStateError } from '../../graph/errors';
import { identityMergePair } from '../../temporal/identityMerge';
import { startExpiryScan } from '../services/expiry';
import { fraudOutcomeStatus, resolveReview } from '../services/fraud';
import { mergeStatus, proposeMerge, undoMerge } from '../services/identityMerge';
import { cancelRecovery, mayOfferCancel, recoveryStatus } from '../services/recovery';
import { relayStatus, retryParked } from '../services/relay';
import { temporalHistoryUrl } from './customerWorkflows';
import { can, field, when, type ConsoleAction, type FormFields } from './kit';

const uuid = z.uuid();
const day = z.iso.date();
/** A payment id or a fraud outcome id, as the REST api takes them. */
const WORKFLOW_KEY = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
const REASON_MAX = 500;

const words = (s: string) => s.replace(/_/g, ' ');

/** A required field of a given form (InvalidInputError naming it otherwise). */
function matching(form: FormFields, name: string, test: (v: string) => boolean, what: string): string {
  const value = field(form, name);
  if (!test(value)) throw new InvalidInputError(name, what);
  return value;
}

/** An optional free-text field, at most REASON_MAX characters; undefined when empty. */
function optionalText(form: FormFields, name: string): string | undefined {
  const value = form[name]?.trim();
  if (!value) return undefined;
  if (value.length > REASON_MAX) throw new InvalidInputError(name, `at most ${REASON_MAX} characters`);
  return value;
}

function requiredText(form: FormFields, name: string): string {
  const value = field(form, name, 'say why');
  if (value.length > REASON_MAX) throw new InvalidInputError(name, `at most ${REASON_MAX} characters`);
  return value;
}

function oneOf<T extends string>(form: FormFields, name: string, values: readonly T[]): T {
  const value = field(form, name);
  if (!(values as readonly string[]).includes(value))
    throw new InvalidInputError(name, `must be one of ${values.join(', ')}`);
  return value as T;
}

/** A link for an outcome page's line (its text and address escaped here, then kept as markup). */
function linkLine(before: string, href: string, text: string): string {
  const esc = (s: string) =>
    s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
  return raw(`${esc(before)}<a class="temporal-link" href="${esc(href)}">${esc(text)}</a>`);
}

const opsOnly = (p: Parameters<ConsoleAction['allowed']>[0]) => can(p, ['ops']);

const fraudReview: ConsoleAction = {
  name: 'fraud-review',
  allowed: opsOnly,
  confirm: async (deps, form) => {
    const outcomeId = matching(form, 'outcome_id', (v) => WORKFLOW_KEY.test(v), 'not a fraud outcome id');
    const decision = oneOf(form, 'decision', ['reinstate', 'confirm'] as const);
    const note = optionalText(form, 'note');
    const status = await fraudOutcomeStatus(deps, outcomeId);
    if (status.state !== 'awaiting_review' || status.decision)
      throw new InvalidStateError(`fraud outcome ${outcomeId} is not awaiting review (it is ${words(status.state)})`);
    return {
      title: decision === 'reinstate' ? 'Reinstate the customer?' : 'Confirm the suspension?',
      details: [
        `Fraud outcome ${outcomeId} (${words(status.outcome)}) suspended the customer pending review` +
          `${status.review_deadline ? `, until ${when(status.review_deadline)} at the latest` : ''}.`,
        decision === 'reinstate'
          ? 'Reinstate: the suspension ends and the customer is active again.'
          : 'Confirm: the customer stays suspended, and the review ends.',
        'The first decision is final: a later one is refused.',
        ...(note ? [`Your note: ${note}`] : []),
      ],
      danger: decision === 'confirm',
    };
  },
  run: async (deps, form, session) => {
    const outcomeId = matching(form, 'outcome_id', (v) => WORKFLOW_KEY.test(v), 'not a fraud outcome id');
    const decision = oneOf(form, 'decision', ['reinstate', 'confirm'] as const);
    const note = optionalText(form, 'note');
    const resolution = { decision, ...(note ? { note } : {}) };
    const status = await resolveReview(deps, outcomeId, resolution, session.principal.subject);
    return {
      title: 'Review decided',
      details: [
        status.state === 'reinstated'
          ? `Fraud outcome ${outcomeId}: the customer is reinstated (active again).`
          : status.state === 'confirmed'
            ? `Fraud outcome ${outcomeId}: the suspension is confirmed; the customer stays suspended.`
            : `Fraud outcome ${outcomeId} is now ${words(status.state)}.`,
        ...(status.problem ? [`But: ${status.problem}`] : []),
      ],
    };
  },
};

const cancelRecoveryAction: ConsoleAction = {
  name: 'cancel-recovery',
  allowed: opsOnly,
  confirm: async (deps, form) => {
    const paymentId = matching(form, 'payment_id', (v) => WORKFLOW_KEY.test(v), 'not a payment id');
    const reason = requiredText(form, 'reason');
    const status = await recoveryStatus(deps, paymentId);
    return {
      title: 'Cancel this recovery?',
      details: [
        `The recovery of payment ${paymentId} is ${words(status.state)}` +
          `${status.next_retry_at ? `; its next retry would be at ${when(status.next_retry_at)}` : ''}.`,
        'Cancelled, it sends nothing more to the gateway: a charge already sent is settled with the gateway ' +
          'first, and if it went through the recovery ends recovered with that charge; otherwise it ends stopped.',
        // The recovery decides when the cancel reaches it: this page only says what it looks like now.
        mayOfferCancel(status)
          ? 'The stop is recorded at once; the answer waits for that settle.'
          : 'It does not look cancellable now; it will say why if it refuses.',
        `Reason recorded with it: ${reason} (a recovery cancelled before keeps its first cancel and reason).`,
      ],
      danger: true,
    };
  },
  run: async (deps, form) => {
    const paymentId = matching(form, 'payment_id', (v) => WORKFLOW_KEY.test(v), 'not a payment id');
    const reply = await cancelRecovery(deps, paymentId, requiredText(form, 'reason'));
    if (reply.outcome === 'stopping')
      return {
        title: 'Recovery stopping',
        details: [
          `The recovery of payment ${paymentId} took the cancel and sends nothing more; it ends once what it ` +
            'is doing is over (a charge settled with the gateway, a record that waits for ops). Its status says ' +
            'when it has ended, and with what.',
        ],
      };
    const { status } = reply;
    return {
      // A charge that went through first is never hidden behind the cancel.
      title: status.state === 'stopped' ? 'Recovery cancelled' : `Recovery ${words(status.state)} before the cancel`,
      details: [
        `The recovery of payment ${paymentId} took the cancel; it is ${words(status.state)} now.`,
        ...(status.stop_reason ? [`Why it stopped: ${status.stop_reason}`] : []),
      ],
    };
  },
};

function asOfOf(form: FormFields): string | undefined {
  const value = form.as_of?.trim();
  if (!value) return undefined;
  if (!day.safeParse(value).success) throw new InvalidInputError('as_of', 'must be a calendar date YYYY-MM-DD');
  return value;
}

const expiryScan: ConsoleAction = {
  name: 'expiry-scan',
  allowed: opsOnly,
  confirm: async (_deps, form) => {
    const asOf = asOfOf(form);
    requiredText(form, 'reason');
    return {
      title: 'Start a card-expiry scan?',
      details: [
        `A card-expiry scan as of ${asOf ?? 'today'} starts now, beside the daily one, for the reason given.`,
        'It warns customers whose default card expires in 60, 30 or 7 days (once per card and stage) and marks ' +
          'cards past their expiry month expired.',
        'Run again on the same day, it sends nothing twice; while one runs for that day, that one is the answer.',
      ],
    };
  },
  run: async (deps, form, session) => {
    const started = await startExpiryScan(deps, {
      as_of: asOfOf(form),
      reason: requiredText(form, 'reason'),
      requested_by: session.principal.subject,
    });
    const runId = await deps.temporal.client.workflow
      .getHandle(started.workflow_id)
      .describe()
      .then(
        (d) => d.runId,
        () => undefined,
      );
    return {
      title: 'Expiry scan started',
      details: [
        `Workflow ${started.workflow_id} scans the cards as of ${started.as_of}.`,
        linkLine(
          'Follow it: ',
          temporalHistoryUrl(deps, started.workflow_id, runId),
          `${started.workflow_id} in the Temporal UI`,
        ),
      ],
    };
  },
};

function eventIdOf(form: FormFields): string | undefined {
  const value = form.event_id?.trim();
  if (!value) return undefined;
  if (!uuid.safeParse(value).success) throw new InvalidInputError('event_id', 'must be the id of a parked event');
  return value;
}

const relayRetry: ConsoleAction = {
  name: 'relay-retry',
  allowed: opsOnly,
  confirm: async (deps, form) => {
    const eventId = eventIdOf(form);
    const relay = await relayStatus(deps.graph, deps.temporal.client);
    return {
      title: eventId ? 'Deliver this parked event again?' : 'Deliver every parked event again?',
      details: [
        eventId
          ? `The event relay tries event ${eventId} again between its pages.`
          : `The event relay tries all ${relay.parked_count} parked events again between its pages.`,
        'One the subscriber refuses again is parked again, with its new answer.',
      ],
    };
  },
  run: async (deps, form) => {
    const eventId = eventIdOf(form);
    const queued = await retryParked(deps.temporal.client, eventId);
    return {
      title: 'Retry queued',
      details: [
        `The event relay (${queued.workflow_id}) has queued the retry of ` +
          `${eventId ? `event ${eventId}` : 'every parked event'}.`,
        'The operations page shows what is still parked.',
      ],
    };
  },
};

interface Proposal {
  survivor_id: string;
  merged_id: string;
  consent: boolean;
  reason: string | undefined;
}

function proposalOf(form: FormFields, ops: boolean): Proposal {
  const isUuid = (v: string) => uuid.safeParse(v).success;
  const survivor_id = matching(form, 'survivor_id', isUuid, 'not a customer id (a UUID)');
  const merged_id = matching(form, 'merged_id', isUuid, 'not a customer id (a UUID)');
  // Only ops decide alone (the service holds to that too).
  const consent = !ops || (form.consent ?? 'yes') !== 'no';
  return { survivor_id, merged_id, consent, reason: optionalText(form, 'reason') };
}

const mergePropose: ConsoleAction = {
  name: 'merge-propose',
  allowed: (p) => can(p, ['identity:merge']),
  confirm: async (deps, form, session) => {
    const p = proposalOf(form, session.principal.scopes.has('ops'));
    return {
      title: 'Propose this merge?',
      details: [
        `Customer ${p.merged_id} is merged into customer ${p.survivor_id}: ${p.survivor_id} stays, and ` +
          `${p.merged_id} becomes a record that leads to it (its cards, devices, addresses and contact details move).`,
        p.consent
          ? 'Both customers are asked to consent, through a verified email or phone of each; the merge happens only ' +
            `if both confirm within ${deps.merges.consentDays} days.`
          : 'Ops decide alone: the merge happens now, without asking the customers.',
        `Ops can undo it for ${deps.merges.unmergeDays} days.`,
        ...(p.reason ? [`Reason: ${p.reason}`] : []),
      ],
      danger: !p.consent,
    };
  },
  run: async (deps, form, session) => {
    const p = proposalOf(form, session.principal.scopes.has('ops'));
    const { created, status } = await proposeMerge(
      deps,
      { survivor_id: p.survivor_id, merged_id: p.merged_id, consent: p.consent, reason: p.reason },
      session.principal,
    );
    return {
      title: created ? 'Merge proposed' : 'This merge runs already',
      details: [
        `${created ? 'Started' : 'Already running'}: ${status.merge_id}, now ${words(status.state)}.`,
        status.decided_by === 'consent'
          ? 'It waits for both customers’ consent.'
          : 'Ops decided it: no consent is asked.',
        ...(status.problem ? [`Problem: ${status.problem}`] : []),
      ],
    };
  },
};

function mergeIdOf(form: FormFields): string {
  return matching(form, 'merge_id', (v) => identityMergePair(v) !== null, 'not an identity merge id');
}

const mergeUndo: ConsoleAction = {
  name: 'merge-undo',
  allowed: opsOnly,
  confirm: async (deps, form, session) => {
    const mergeId = mergeIdOf(form);
    const reason = requiredText(form, 'reason');
    const status = await mergeStatus(deps, mergeId, session.principal);
    if (status.state !== 'merged')
      throw new InvalidStateError(`identity merge ${mergeId} cannot be undone: it is ${words(status.state)}`);
    return {
      title: 'Undo this merge?',
      details: [
        `Customer ${status.merged_id} was merged into ${status.survivor_id}` +
          `${status.merged_at ? ` on ${when(status.merged_at)}` : ''}.`,
        `Undone, what the merge moved goes back to ${status.merged_id}, except what was deleted or changed since ` +
          '(which the outcome lists).',
        `Reason recorded with it: ${reason}`,
      ],
      danger: true,
    };
  },
  run: async (deps, form, session) => {
    const mergeId = mergeIdOf(form);
    const status = await undoMerge(deps, mergeId, requiredText(form, 'reason'), session.principal);
    const restored = status.unmerge?.restored;
    const kept = status.unmerge?.not_restored ?? [];
    return {
      title: 'Merge undone',
      details: [
        `Identity merge ${mergeId} is ${words(status.state)}.`,
        ...(restored
          ? [
              `Restored to ${status.merged_id}: ${restored.payment_methods.length} payment methods, ` +
                `${restored.devices.length} devices, ${restored.addresses.length} addresses, ` +
                `${restored.identifiers.length} contact details.`,
            ]
          : []),
        ...kept.map((k) => `Not restored: ${k.kind}${k.id ? ` ${k.id}` : ''} (${k.reason}).`),
      ],
    };
  },
};

/** Ops' console actions. */
export function opsActions(): ConsoleAction[] {
  return [fraudReview, cancelRecoveryAction, expiryScan, relayRetry, mergePropose, mergeUndo];
}

/** Whether the session's principal may take the named action (what the page shows follows it). */
export function mayTake(actions: readonly ConsoleAction[], principal: Parameters<ConsoleAction['allowed']>[0]) {
  return (name: string) => actions.find((a) => a.name === name)?.allowed(principal) ?? false;
}
