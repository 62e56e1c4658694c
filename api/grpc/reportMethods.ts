/**
 * The methods of persona.v1.PersonaAgent by which the platform tells Persona something, each
 * through its REST route's service: an onboarding, a payment failure and the owner's stop, a fraud
 * outcome, a batch of interactions.
 */
import type { PersonaAgentHandlers } from '../../proto/generated/persona/v1/PersonaAgent';
import { InvalidInputError } from '../../graph/errors';
import { IDEMPOTENCY_KEY_PATTERN } from '../../temporal/workflowIds';
import type { ApiDeps } from '../deps';
import {
  fraudOutcomeSchema,
  MAX_INTERACTIONS,
  paymentFailureSchema,
  paymentIdField,
  paymentNoLongerOwedSchema,
} from '../requests';
import { reporterOf, reportFraudOutcome } from '../services/fraud';
import { recordInteractions } from '../services/interactions';
import { startOnboarding } from '../services/onboarding';
import { reportPaymentFailure } from '../services/recovery';
import { paymentNoLongerOwed, reporterKey } from '../services/recoveryOwnerStop';
import { parse, plain } from './messages';
import { unary } from './unary';

type ReportMethods = Pick<
  PersonaAgentHandlers,
  'OnboardCustomer' | 'ReportPaymentFailure' | 'ReportPaymentNoLongerOwed' | 'ReportFraudOutcome' | 'RecordInteractions'
>;

export function reportMethods(deps: ApiDeps): ReportMethods {
  return {
    OnboardCustomer: onboardCustomer(deps),
    ReportPaymentFailure: unary(deps, {
      rule: { scopes: ['payments:report'] },
      reachesTemporal: true,
      run: async (req, { principal }) => {
        const parsed = parse(paymentFailureSchema, {
          ...plain(req),
          amount: req.amount === undefined ? undefined : Number(req.amount),
        });
        return reportPaymentFailure(deps, parsed, reporterKey(principal));
      },
    }),
    ReportPaymentNoLongerOwed: reportNoLongerOwed(deps),
    ReportFraudOutcome: unary(deps, {
      rule: { scopes: ['fraud:report'] },
      reachesTemporal: true,
      run: async (req, { principal }) =>
        reportFraudOutcome(deps, parse(fraudOutcomeSchema, plain(req)), reporterOf(principal)),
    }),
    RecordInteractions: recordInteractionsMethod(deps),
  };
}

function onboardCustomer(deps: ApiDeps): ReportMethods['OnboardCustomer'] {
  return unary(deps, {
    rule: { scopes: ['onboarding:write'] },
    reachesTemporal: true,
    waits: (req) => req.wait === true,
    run: async (req, { principal, authorization }) => {
      const key = req.idempotency_key ?? '';
      if (!IDEMPOTENCY_KEY_PATTERN.test(key))
        throw new InvalidInputError('idempotency_key', 'must be 1–200 characters of letters, digits and . _ : -');
      const body = plain({
        customer: plain(req.customer),
        payment_method: plain(req.payment_method),
        device: plain(req.device),
        address: plain(req.address),
        digital_identifiers: (req.digital_identifiers ?? []).map((i) => ({ is_verified: false, ...plain(i) })),
        person: plain(req.person),
      });
      const answer = await startOnboarding(deps, key, body, req.wait === true, principal, authorization);
      return answer.status === 200 ? answer.body : { workflow_id: answer.body.workflow_id };
    },
  });
}

function reportNoLongerOwed(deps: ApiDeps): ReportMethods['ReportPaymentNoLongerOwed'] {
  return unary(deps, {
    rule: { scopes: ['payments:report'] },
    reachesTemporal: true,
    waits: (req) => req.wait === true,
    run: async (req, { principal }) => {
      const { payment_id: paymentId, ...word } = parse(
        paymentNoLongerOwedSchema.extend({ payment_id: paymentIdField }),
        plain({ payment_id: req.payment_id ?? '', reason: req.reason, note: req.note }),
      );
      const waitMs = req.wait === true ? deps.limits.waitTimeoutMs : deps.limits.requestDeadlineMs / 2;
      const caller = { reporter: reporterKey(principal), ops: principal.scopes.has('ops') };
      const answer = await paymentNoLongerOwed(deps, paymentId, word, waitMs, caller);
      return {
        ...answer,
        charge: answer.charge && { ...answer.charge, charge_id: answer.charge.charge_id ?? '' },
        unknown_charge: answer.unknown_charge ?? '',
        state: answer.state ?? '',
        stop_reason: answer.stop_reason ?? '',
      };
    },
  });
}

function recordInteractionsMethod(deps: ApiDeps): ReportMethods['RecordInteractions'] {
  return unary(deps, {
    rule: { scopes: ['interactions:write'] },
    run: async (req, { principal }) => {
      const items = req.data ?? [];
      if (items.length < 1 || items.length > MAX_INTERACTIONS)
        throw new InvalidInputError('data', `must hold 1–${MAX_INTERACTIONS} interactions`);
      // As the REST item reads: unset fields absent, the amount a number; the same schema decides.
      const answer = await recordInteractions(
        deps,
        items.map((i) =>
          plain({
            ...i,
            amount: i.amount === undefined || i.amount === null ? undefined : Number(i.amount),
            device: plain(i.device),
            shipping_address: plain(i.shipping_address),
            address: plain(i.address),
          }),
        ),
        principal,
      );
      return {
        data: answer.data.map((a) => ({
          id: a.id ?? '',
          result: a.result,
          field: a.result === 'invalid' ? a.field : '',
          problem: a.result === 'invalid' ? a.problem : '',
          consistency_token: a.result === 'recorded' ? (a.consistency_token ?? '') : '',
        })),
      };
    },
  });
}
