// Original file: proto/persona/v1/persona.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { CheckoutOptions as _persona_v1_CheckoutOptions, CheckoutOptions__Output as _persona_v1_CheckoutOptions__Output } from '../../persona/v1/CheckoutOptions';
import type { CustomerContext as _persona_v1_CustomerContext, CustomerContext__Output as _persona_v1_CustomerContext__Output } from '../../persona/v1/CustomerContext';
import type { DeviceTrustScore as _persona_v1_DeviceTrustScore, DeviceTrustScore__Output as _persona_v1_DeviceTrustScore__Output } from '../../persona/v1/DeviceTrustScore';
import type { GetCheckoutOptionsRequest as _persona_v1_GetCheckoutOptionsRequest, GetCheckoutOptionsRequest__Output as _persona_v1_GetCheckoutOptionsRequest__Output } from '../../persona/v1/GetCheckoutOptionsRequest';
import type { GetCustomerContextRequest as _persona_v1_GetCustomerContextRequest, GetCustomerContextRequest__Output as _persona_v1_GetCustomerContextRequest__Output } from '../../persona/v1/GetCustomerContextRequest';
import type { MarkPaymentMethodInactiveRequest as _persona_v1_MarkPaymentMethodInactiveRequest, MarkPaymentMethodInactiveRequest__Output as _persona_v1_MarkPaymentMethodInactiveRequest__Output } from '../../persona/v1/MarkPaymentMethodInactiveRequest';
import type { OnboardCustomerRequest as _persona_v1_OnboardCustomerRequest, OnboardCustomerRequest__Output as _persona_v1_OnboardCustomerRequest__Output } from '../../persona/v1/OnboardCustomerRequest';
import type { OnboardCustomerResponse as _persona_v1_OnboardCustomerResponse, OnboardCustomerResponse__Output as _persona_v1_OnboardCustomerResponse__Output } from '../../persona/v1/OnboardCustomerResponse';
import type { OwnerStopAnswer as _persona_v1_OwnerStopAnswer, OwnerStopAnswer__Output as _persona_v1_OwnerStopAnswer__Output } from '../../persona/v1/OwnerStopAnswer';
import type { RecordInteractionsRequest as _persona_v1_RecordInteractionsRequest, RecordInteractionsRequest__Output as _persona_v1_RecordInteractionsRequest__Output } from '../../persona/v1/RecordInteractionsRequest';
import type { RecordInteractionsResponse as _persona_v1_RecordInteractionsResponse, RecordInteractionsResponse__Output as _persona_v1_RecordInteractionsResponse__Output } from '../../persona/v1/RecordInteractionsResponse';
import type { ReportFraudOutcomeRequest as _persona_v1_ReportFraudOutcomeRequest, ReportFraudOutcomeRequest__Output as _persona_v1_ReportFraudOutcomeRequest__Output } from '../../persona/v1/ReportFraudOutcomeRequest';
import type { ReportPaymentFailureRequest as _persona_v1_ReportPaymentFailureRequest, ReportPaymentFailureRequest__Output as _persona_v1_ReportPaymentFailureRequest__Output } from '../../persona/v1/ReportPaymentFailureRequest';
import type { ReportPaymentNoLongerOwedRequest as _persona_v1_ReportPaymentNoLongerOwedRequest, ReportPaymentNoLongerOwedRequest__Output as _persona_v1_ReportPaymentNoLongerOwedRequest__Output } from '../../persona/v1/ReportPaymentNoLongerOwedRequest';
import type { UpdateDeviceTrustScoreRequest as _persona_v1_UpdateDeviceTrustScoreRequest, UpdateDeviceTrustScoreRequest__Output as _persona_v1_UpdateDeviceTrustScoreRequest__Output } from '../../persona/v1/UpdateDeviceTrustScoreRequest';
import type { WalletItem as _persona_v1_WalletItem, WalletItem__Output as _persona_v1_WalletItem__Output } from '../../persona/v1/WalletItem';
import type { WorkflowStarted as _persona_v1_WorkflowStarted, WorkflowStarted__Output as _persona_v1_WorkflowStarted__Output } from '../../persona/v1/WorkflowStarted';

export interface PersonaAgentClient extends grpc.Client {
  GetCheckoutOptions(argument: _persona_v1_GetCheckoutOptionsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_CheckoutOptions__Output>): grpc.ClientUnaryCall;
  GetCheckoutOptions(argument: _persona_v1_GetCheckoutOptionsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_persona_v1_CheckoutOptions__Output>): grpc.ClientUnaryCall;
  GetCheckoutOptions(argument: _persona_v1_GetCheckoutOptionsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_CheckoutOptions__Output>): grpc.ClientUnaryCall;
  GetCheckoutOptions(argument: _persona_v1_GetCheckoutOptionsRequest, callback: grpc.requestCallback<_persona_v1_CheckoutOptions__Output>): grpc.ClientUnaryCall;
  getCheckoutOptions(argument: _persona_v1_GetCheckoutOptionsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_CheckoutOptions__Output>): grpc.ClientUnaryCall;
  getCheckoutOptions(argument: _persona_v1_GetCheckoutOptionsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_persona_v1_CheckoutOptions__Output>): grpc.ClientUnaryCall;
  getCheckoutOptions(argument: _persona_v1_GetCheckoutOptionsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_CheckoutOptions__Output>): grpc.ClientUnaryCall;
  getCheckoutOptions(argument: _persona_v1_GetCheckoutOptionsRequest, callback: grpc.requestCallback<_persona_v1_CheckoutOptions__Output>): grpc.ClientUnaryCall;
  
  GetCustomerContext(argument: _persona_v1_GetCustomerContextRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_CustomerContext__Output>): grpc.ClientUnaryCall;
  GetCustomerContext(argument: _persona_v1_GetCustomerContextRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_persona_v1_CustomerContext__Output>): grpc.ClientUnaryCall;
  GetCustomerContext(argument: _persona_v1_GetCustomerContextRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_CustomerContext__Output>): grpc.ClientUnaryCall;
  GetCustomerContext(argument: _persona_v1_GetCustomerContextRequest, callback: grpc.requestCallback<_persona_v1_CustomerContext__Output>): grpc.ClientUnaryCall;
  getCustomerContext(argument: _persona_v1_GetCustomerContextRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_CustomerContext__Output>): grpc.ClientUnaryCall;
  getCustomerContext(argument: _persona_v1_GetCustomerContextRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_persona_v1_CustomerContext__Output>): grpc.ClientUnaryCall;
  getCustomerContext(argument: _persona_v1_GetCustomerContextRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_CustomerContext__Output>): grpc.ClientUnaryCall;
  getCustomerContext(argument: _persona_v1_GetCustomerContextRequest, callback: grpc.requestCallback<_persona_v1_CustomerContext__Output>): grpc.ClientUnaryCall;
  
  MarkPaymentMethodInactive(argument: _persona_v1_MarkPaymentMethodInactiveRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_WalletItem__Output>): grpc.ClientUnaryCall;
  MarkPaymentMethodInactive(argument: _persona_v1_MarkPaymentMethodInactiveRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_persona_v1_WalletItem__Output>): grpc.ClientUnaryCall;
  MarkPaymentMethodInactive(argument: _persona_v1_MarkPaymentMethodInactiveRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_WalletItem__Output>): grpc.ClientUnaryCall;
  MarkPaymentMethodInactive(argument: _persona_v1_MarkPaymentMethodInactiveRequest, callback: grpc.requestCallback<_persona_v1_WalletItem__Output>): grpc.ClientUnaryCall;
  markPaymentMethodInactive(argument: _persona_v1_MarkPaymentMethodInactiveRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_WalletItem__Output>): grpc.ClientUnaryCall;
  markPaymentMethodInactive(argument: _persona_v1_MarkPaymentMethodInactiveRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_persona_v1_WalletItem__Output>): grpc.ClientUnaryCall;
  markPaymentMethodInactive(argument: _persona_v1_MarkPaymentMethodInactiveRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_WalletItem__Output>): grpc.ClientUnaryCall;
  markPaymentMethodInactive(argument: _persona_v1_MarkPaymentMethodInactiveRequest, callback: grpc.requestCallback<_persona_v1_WalletItem__Output>): grpc.ClientUnaryCall;
  
  OnboardCustomer(argument: _persona_v1_OnboardCustomerRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_OnboardCustomerResponse__Output>): grpc.ClientUnaryCall;
  OnboardCustomer(argument: _persona_v1_OnboardCustomerRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_persona_v1_OnboardCustomerResponse__Output>): grpc.ClientUnaryCall;
  OnboardCustomer(argument: _persona_v1_OnboardCustomerRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_OnboardCustomerResponse__Output>): grpc.ClientUnaryCall;
  OnboardCustomer(argument: _persona_v1_OnboardCustomerRequest, callback: grpc.requestCallback<_persona_v1_OnboardCustomerResponse__Output>): grpc.ClientUnaryCall;
  onboardCustomer(argument: _persona_v1_OnboardCustomerRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_OnboardCustomerResponse__Output>): grpc.ClientUnaryCall;
  onboardCustomer(argument: _persona_v1_OnboardCustomerRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_persona_v1_OnboardCustomerResponse__Output>): grpc.ClientUnaryCall;
  onboardCustomer(argument: _persona_v1_OnboardCustomerRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_OnboardCustomerResponse__Output>): grpc.ClientUnaryCall;
  onboardCustomer(argument: _persona_v1_OnboardCustomerRequest, callback: grpc.requestCallback<_persona_v1_OnboardCustomerResponse__Output>): grpc.ClientUnaryCall;
  
  RecordInteractions(argument: _persona_v1_RecordInteractionsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_RecordInteractionsResponse__Output>): grpc.ClientUnaryCall;
  RecordInteractions(argument: _persona_v1_RecordInteractionsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_persona_v1_RecordInteractionsResponse__Output>): grpc.ClientUnaryCall;
  RecordInteractions(argument: _persona_v1_RecordInteractionsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_RecordInteractionsResponse__Output>): grpc.ClientUnaryCall;
  RecordInteractions(argument: _persona_v1_RecordInteractionsRequest, callback: grpc.requestCallback<_persona_v1_RecordInteractionsResponse__Output>): grpc.ClientUnaryCall;
  recordInteractions(argument: _persona_v1_RecordInteractionsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_RecordInteractionsResponse__Output>): grpc.ClientUnaryCall;
  recordInteractions(argument: _persona_v1_RecordInteractionsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_persona_v1_RecordInteractionsResponse__Output>): grpc.ClientUnaryCall;
  recordInteractions(argument: _persona_v1_RecordInteractionsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_RecordInteractionsResponse__Output>): grpc.ClientUnaryCall;
  recordInteractions(argument: _persona_v1_RecordInteractionsRequest, callback: grpc.requestCallback<_persona_v1_RecordInteractionsResponse__Output>): grpc.ClientUnaryCall;
  
  ReportFraudOutcome(argument: _persona_v1_ReportFraudOutcomeRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_WorkflowStarted__Output>): grpc.ClientUnaryCall;
  ReportFraudOutcome(argument: _persona_v1_ReportFraudOutcomeRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_persona_v1_WorkflowStarted__Output>): grpc.ClientUnaryCall;
  ReportFraudOutcome(argument: _persona_v1_ReportFraudOutcomeRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_WorkflowStarted__Output>): grpc.ClientUnaryCall;
  ReportFraudOutcome(argument: _persona_v1_ReportFraudOutcomeRequest, callback: grpc.requestCallback<_persona_v1_WorkflowStarted__Output>): grpc.ClientUnaryCall;
  reportFraudOutcome(argument: _persona_v1_ReportFraudOutcomeRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_WorkflowStarted__Output>): grpc.ClientUnaryCall;
  reportFraudOutcome(argument: _persona_v1_ReportFraudOutcomeRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_persona_v1_WorkflowStarted__Output>): grpc.ClientUnaryCall;
  reportFraudOutcome(argument: _persona_v1_ReportFraudOutcomeRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_WorkflowStarted__Output>): grpc.ClientUnaryCall;
  reportFraudOutcome(argument: _persona_v1_ReportFraudOutcomeRequest, callback: grpc.requestCallback<_persona_v1_WorkflowStarted__Output>): grpc.ClientUnaryCall;
  
  ReportPaymentFailure(argument: _persona_v1_ReportPaymentFailureRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_WorkflowStarted__Output>): grpc.ClientUnaryCall;
  ReportPaymentFailure(argument: _persona_v1_ReportPaymentFailureRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_persona_v1_WorkflowStarted__Output>): grpc.ClientUnaryCall;
  ReportPaymentFailure(argument: _persona_v1_ReportPaymentFailureRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_WorkflowStarted__Output>): grpc.ClientUnaryCall;
  ReportPaymentFailure(argument: _persona_v1_ReportPaymentFailureRequest, callback: grpc.requestCallback<_persona_v1_WorkflowStarted__Output>): grpc.ClientUnaryCall;
  reportPaymentFailure(argument: _persona_v1_ReportPaymentFailureRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_WorkflowStarted__Output>): grpc.ClientUnaryCall;
  reportPaymentFailure(argument: _persona_v1_ReportPaymentFailureRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_persona_v1_WorkflowStarted__Output>): grpc.ClientUnaryCall;
  reportPaymentFailure(argument: _persona_v1_ReportPaymentFailureRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_WorkflowStarted__Output>): grpc.ClientUnaryCall;
  reportPaymentFailure(argument: _persona_v1_ReportPaymentFailureRequest, callback: grpc.requestCallback<_persona_v1_WorkflowStarted__Output>): grpc.ClientUnaryCall;
  
  ReportPaymentNoLongerOwed(argument: _persona_v1_ReportPaymentNoLongerOwedRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_OwnerStopAnswer__Output>): grpc.ClientUnaryCall;
  ReportPaymentNoLongerOwed(argument: _persona_v1_ReportPaymentNoLongerOwedRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_persona_v1_OwnerStopAnswer__Output>): grpc.ClientUnaryCall;
  ReportPaymentNoLongerOwed(argument: _persona_v1_ReportPaymentNoLongerOwedRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_OwnerStopAnswer__Output>): grpc.ClientUnaryCall;
  ReportPaymentNoLongerOwed(argument: _persona_v1_ReportPaymentNoLongerOwedRequest, callback: grpc.requestCallback<_persona_v1_OwnerStopAnswer__Output>): grpc.ClientUnaryCall;
  reportPaymentNoLongerOwed(argument: _persona_v1_ReportPaymentNoLongerOwedRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_OwnerStopAnswer__Output>): grpc.ClientUnaryCall;
  reportPaymentNoLongerOwed(argument: _persona_v1_ReportPaymentNoLongerOwedRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_persona_v1_OwnerStopAnswer__Output>): grpc.ClientUnaryCall;
  reportPaymentNoLongerOwed(argument: _persona_v1_ReportPaymentNoLongerOwedRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_OwnerStopAnswer__Output>): grpc.ClientUnaryCall;
  reportPaymentNoLongerOwed(argument: _persona_v1_ReportPaymentNoLongerOwedRequest, callback: grpc.requestCallback<_persona_v1_OwnerStopAnswer__Output>): grpc.ClientUnaryCall;
  
  UpdateDeviceTrustScore(argument: _persona_v1_UpdateDeviceTrustScoreRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_DeviceTrustScore__Output>): grpc.ClientUnaryCall;
  UpdateDeviceTrustScore(argument: _persona_v1_UpdateDeviceTrustScoreRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_persona_v1_DeviceTrustScore__Output>): grpc.ClientUnaryCall;
  UpdateDeviceTrustScore(argument: _persona_v1_UpdateDeviceTrustScoreRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_DeviceTrustScore__Output>): grpc.ClientUnaryCall;
  UpdateDeviceTrustScore(argument: _persona_v1_UpdateDeviceTrustScoreRequest, callback: grpc.requestCallback<_persona_v1_DeviceTrustScore__Output>): grpc.ClientUnaryCall;
  updateDeviceTrustScore(argument: _persona_v1_UpdateDeviceTrustScoreRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_DeviceTrustScore__Output>): grpc.ClientUnaryCall;
  updateDeviceTrustScore(argument: _persona_v1_UpdateDeviceTrustScoreRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_persona_v1_DeviceTrustScore__Output>): grpc.ClientUnaryCall;
  updateDeviceTrustScore(argument: _persona_v1_UpdateDeviceTrustScoreRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_persona_v1_DeviceTrustScore__Output>): grpc.ClientUnaryCall;
  updateDeviceTrustScore(argument: _persona_v1_UpdateDeviceTrustScoreRequest, callback: grpc.requestCallback<_persona_v1_DeviceTrustScore__Output>): grpc.ClientUnaryCall;
  
}

export interface PersonaAgentHandlers extends grpc.UntypedServiceImplementation {
  GetCheckoutOptions: grpc.handleUnaryCall<_persona_v1_GetCheckoutOptionsRequest__Output, _persona_v1_CheckoutOptions>;
  
  GetCustomerContext: grpc.handleUnaryCall<_persona_v1_GetCustomerContextRequest__Output, _persona_v1_CustomerContext>;
  
  MarkPaymentMethodInactive: grpc.handleUnaryCall<_persona_v1_MarkPaymentMethodInactiveRequest__Output, _persona_v1_WalletItem>;
  
  OnboardCustomer: grpc.handleUnaryCall<_persona_v1_OnboardCustomerRequest__Output, _persona_v1_OnboardCustomerResponse>;
  
  RecordInteractions: grpc.handleUnaryCall<_persona_v1_RecordInteractionsRequest__Output, _persona_v1_RecordInteractionsResponse>;
  
  ReportFraudOutcome: grpc.handleUnaryCall<_persona_v1_ReportFraudOutcomeRequest__Output, _persona_v1_WorkflowStarted>;
  
  ReportPaymentFailure: grpc.handleUnaryCall<_persona_v1_ReportPaymentFailureRequest__Output, _persona_v1_WorkflowStarted>;
  
  ReportPaymentNoLongerOwed: grpc.handleUnaryCall<_persona_v1_ReportPaymentNoLongerOwedRequest__Output, _persona_v1_OwnerStopAnswer>;
  
  UpdateDeviceTrustScore: grpc.handleUnaryCall<_persona_v1_UpdateDeviceTrustScoreRequest__Output, _persona_v1_DeviceTrustScore>;
  
}

export interface PersonaAgentDefinition extends grpc.ServiceDefinition {
  GetCheckoutOptions: MethodDefinition<_persona_v1_GetCheckoutOptionsRequest, _persona_v1_CheckoutOptions, _persona_v1_GetCheckoutOptionsRequest__Output, _persona_v1_CheckoutOptions__Output>
  GetCustomerContext: MethodDefinition<_persona_v1_GetCustomerContextRequest, _persona_v1_CustomerContext, _persona_v1_GetCustomerContextRequest__Output, _persona_v1_CustomerContext__Output>
  MarkPaymentMethodInactive: MethodDefinition<_persona_v1_MarkPaymentMethodInactiveRequest, _persona_v1_WalletItem, _persona_v1_MarkPaymentMethodInactiveRequest__Output, _persona_v1_WalletItem__Output>
  OnboardCustomer: MethodDefinition<_persona_v1_OnboardCustomerRequest, _persona_v1_OnboardCustomerResponse, _persona_v1_OnboardCustomerRequest__Output, _persona_v1_OnboardCustomerResponse__Output>
  RecordInteractions: MethodDefinition<_persona_v1_RecordInteractionsRequest, _persona_v1_RecordInteractionsResponse, _persona_v1_RecordInteractionsRequest__Output, _persona_v1_RecordInteractionsResponse__Output>
  ReportFraudOutcome: MethodDefinition<_persona_v1_ReportFraudOutcomeRequest, _persona_v1_WorkflowStarted, _persona_v1_ReportFraudOutcomeRequest__Output, _persona_v1_WorkflowStarted__Output>
  ReportPaymentFailure: MethodDefinition<_persona_v1_ReportPaymentFailureRequest, _persona_v1_WorkflowStarted, _persona_v1_ReportPaymentFailureRequest__Output, _persona_v1_WorkflowStarted__Output>
  ReportPaymentNoLongerOwed: MethodDefinition<_persona_v1_ReportPaymentNoLongerOwedRequest, _persona_v1_OwnerStopAnswer, _persona_v1_ReportPaymentNoLongerOwedRequest__Output, _persona_v1_OwnerStopAnswer__Output>
  UpdateDeviceTrustScore: MethodDefinition<_persona_v1_UpdateDeviceTrustScoreRequest, _persona_v1_DeviceTrustScore, _persona_v1_UpdateDeviceTrustScoreRequest__Output, _persona_v1_DeviceTrustScore__Output>
}
