import { describe, expect, it } from 'vitest';
import * as workflows from './index';
import { versioningBehaviourOf } from './versioning';

/** docs/workflows.md, "Versioning", says why each is what it is. */
const EXPECTED: Record<string, 'PINNED' | 'AUTO_UPGRADE'> = {
  onboardingWorkflow: 'PINNED',
  trustedDeviceWorkflow: 'PINNED',
  expiryScanWorkflow: 'PINNED',
  interactionClaimsPruneWorkflow: 'PINNED',
  eventPruneWorkflow: 'PINNED',
  gatewayReconciliationWorkflow: 'PINNED',
  paymentRecoveryWorkflow: 'AUTO_UPGRADE',
  eventRelayWorkflow: 'AUTO_UPGRADE',
  kafkaPublisherWorkflow: 'AUTO_UPGRADE',
  fraudOutcomeWorkflow: 'AUTO_UPGRADE',
  identityMergeWorkflow: 'AUTO_UPGRADE',
  erasureWorkflow: 'AUTO_UPGRADE',
};

describe('workflow versioning behaviours', () => {
  it('every workflow the worker hosts says whether it is pinned or auto-upgrades, as documented', () => {
    const declared = Object.fromEntries(
      Object.entries(workflows).map(([name, fn]) => [name, versioningBehaviourOf(fn)]),
    );
    expect(declared).toEqual(EXPECTED);
  });
});
