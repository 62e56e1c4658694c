/**
 * Every Persona workflow, re-exported: this file is the worker's workflowsPath. Only
 * deterministic code may be imported from here (ESLint bans Node built-ins and I/O modules).
 */
export { onboardingWorkflow } from './onboarding';
export { trustedDeviceWorkflow } from './trustedDevice';
export { paymentRecoveryWorkflow } from './recovery';
export { expiryScanWorkflow } from './expiry';
export { fraudOutcomeWorkflow } from './fraud';
export { eventRelayWorkflow } from './eventRelay';
export { kafkaPublisherWorkflow } from './kafkaPublisher';
export { erasureWorkflow } from './erasure';
export { interactionClaimsPruneWorkflow } from './interactionClaimsPrune';
export { eventPruneWorkflow } from './eventPrune';
export { gatewayReconciliationWorkflow } from './gatewayReconciliation';
export { identityMergeWorkflow } from './identityMerge';
