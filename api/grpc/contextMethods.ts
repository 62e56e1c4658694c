/**
 * The agents' context methods of persona.v1.PersonaAgent, as api/rest/context.ts routes them:
 * context and checkout options (reads), device trust and deactivation (writes).
 */
import type { PersonaAgentHandlers } from '../../proto/generated/persona/v1/PersonaAgent';
import { InvalidInputError } from '../../graph/errors';
import { observeCommits } from '../../graph/graph';
import { customerTokenOf, deviceTokenOf } from '../consistency';
import type { ApiDeps } from '../deps';
import { deviceTrustSchema, inactivateSchema } from '../requests';
import { checkoutOptions, customerContext, markPaymentMethodInactive, setDeviceTrust } from '../services/context';
import { minVersionField, parse, toWalletItem, uuidField } from './messages';
import { unary } from './unary';

type ContextMethods = Pick<
  PersonaAgentHandlers,
  'GetCustomerContext' | 'GetCheckoutOptions' | 'UpdateDeviceTrustScore' | 'MarkPaymentMethodInactive'
>;

export function contextMethods(deps: ApiDeps): ContextMethods {
  return {
    GetCustomerContext: getCustomerContext(deps),
    GetCheckoutOptions: getCheckoutOptions(deps),
    UpdateDeviceTrustScore: updateDeviceTrustScore(deps),
    MarkPaymentMethodInactive: markInactive(deps),
  };
}

function getCustomerContext(deps: ApiDeps): ContextMethods['GetCustomerContext'] {
  return unary(deps, {
    rule: { scopes: ['context:read'] },
    run: async (req, { callerBudgetMs }) => {
      const customerId = uuidField(req.customer_id, 'customer_id');
      const ctx = await customerContext(deps, customerId, callerBudgetMs, minVersionField(req.min_version));
      return {
        ...ctx,
        default_payment_method_id: ctx.default_payment_method_id ?? '',
        predicted_ltv: ctx.predicted_ltv ?? '',
        stale: ctx.stale === true,
        as_of: ctx.as_of ?? '',
        merged_into: ctx.merged_into ?? '',
      };
    },
  });
}

function getCheckoutOptions(deps: ApiDeps): ContextMethods['GetCheckoutOptions'] {
  return unary(deps, {
    rule: { scopes: ['context:read'], self: true },
    customerIdOf: (req) => req.customer_id,
    run: async (req, { principal, callerBudgetMs }) => {
      const deviceId = req.device_id ? uuidField(req.device_id, 'device_id') : null;
      const customerId = uuidField(req.customer_id, 'customer_id');
      const options = await checkoutOptions(
        deps,
        customerId,
        deviceId,
        { principal, scopes: ['context:read'] },
        callerBudgetMs,
        minVersionField(req.min_version),
      );
      return {
        data: options.data.map(toWalletItem),
        trusted_device: options.trusted_device,
        stale: options.stale === true,
        as_of: options.as_of ?? '',
        merged_into: options.merged_into ?? '',
      };
    },
  });
}

function updateDeviceTrustScore(deps: ApiDeps): ContextMethods['UpdateDeviceTrustScore'] {
  return unary(deps, {
    rule: { scopes: ['devices:write'] },
    run: async (req, { principal }) => {
      if (req.trust_score === undefined || req.trust_score === null)
        throw new InvalidInputError('trust_score', 'required');
      const deviceId = uuidField(req.device_id, 'device_id');
      const body = parse(deviceTrustSchema, {
        trust_score: Number(req.trust_score),
        ...(req.reason ? { reason: req.reason } : {}),
      });
      const { result, events } = await observeCommits(() =>
        setDeviceTrust(deps, principal, deviceId, body.trust_score, body.reason),
      );
      return { ...result, consistency_token: deviceTokenOf(events, deviceId) ?? '' };
    },
  });
}

function markInactive(deps: ApiDeps): ContextMethods['MarkPaymentMethodInactive'] {
  return unary(deps, {
    rule: { scopes: ['fraud:report', 'customers:write'] },
    run: async (req) => {
      const paymentMethodId = uuidField(req.payment_method_id, 'payment_method_id');
      if (!(req.reason ?? '').trim()) throw new InvalidInputError('reason', 'required');
      const { reason } = parse(inactivateSchema, { reason: req.reason });
      const { result, events } = await observeCommits(() => markPaymentMethodInactive(deps, paymentMethodId, reason));
      return { ...toWalletItem(result), consistency_token: customerTokenOf(events, result.customer_id) ?? '' };
    },
  });
}
