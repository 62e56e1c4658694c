import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { CheckoutOptions as _persona_v1_CheckoutOptions, CheckoutOptions__Output as _persona_v1_CheckoutOptions__Output } from './persona/v1/CheckoutOptions';
import type { CustomerContext as _persona_v1_CustomerContext, CustomerContext__Output as _persona_v1_CustomerContext__Output } from './persona/v1/CustomerContext';
import type { DeviceTrustScore as _persona_v1_DeviceTrustScore, DeviceTrustScore__Output as _persona_v1_DeviceTrustScore__Output } from './persona/v1/DeviceTrustScore';
import type { GetCheckoutOptionsRequest as _persona_v1_GetCheckoutOptionsRequest, GetCheckoutOptionsRequest__Output as _persona_v1_GetCheckoutOptionsRequest__Output } from './persona/v1/GetCheckoutOptionsRequest';
import type { GetCustomerContextRequest as _persona_v1_GetCustomerContextRequest, GetCustomerContextRequest__Output as _persona_v1_GetCustomerContextRequest__Output } from './persona/v1/GetCustomerContextRequest';
import type { Interaction as _persona_v1_Interaction, Interaction__Output as _persona_v1_Interaction__Output } from './persona/v1/Interaction';
import type { InteractionResult as _persona_v1_InteractionResult, InteractionResult__Output as _persona_v1_InteractionResult__Output } from './persona/v1/InteractionResult';
import type { MarkPaymentMethodInactiveRequest as _persona_v1_MarkPaymentMethodInactiveRequest, MarkPaymentMethodInactiveRequest__Output as _persona_v1_MarkPaymentMethodInactiveRequest__Output } from './persona/v1/MarkPaymentMethodInactiveRequest';
import type { OnboardCustomerRequest as _persona_v1_OnboardCustomerRequest, OnboardCustomerRequest__Output as _persona_v1_OnboardCustomerRequest__Output } from './persona/v1/OnboardCustomerRequest';
import type { OnboardCustomerResponse as _persona_v1_OnboardCustomerResponse, OnboardCustomerResponse__Output as _persona_v1_OnboardCustomerResponse__Output } from './persona/v1/OnboardCustomerResponse';
import type { OnboardingAddress as _persona_v1_OnboardingAddress, OnboardingAddress__Output as _persona_v1_OnboardingAddress__Output } from './persona/v1/OnboardingAddress';
import type { OnboardingCustomer as _persona_v1_OnboardingCustomer, OnboardingCustomer__Output as _persona_v1_OnboardingCustomer__Output } from './persona/v1/OnboardingCustomer';
import type { OnboardingDevice as _persona_v1_OnboardingDevice, OnboardingDevice__Output as _persona_v1_OnboardingDevice__Output } from './persona/v1/OnboardingDevice';
import type { OnboardingIdentifier as _persona_v1_OnboardingIdentifier, OnboardingIdentifier__Output as _persona_v1_OnboardingIdentifier__Output } from './persona/v1/OnboardingIdentifier';
import type { OnboardingPaymentMethod as _persona_v1_OnboardingPaymentMethod, OnboardingPaymentMethod__Output as _persona_v1_OnboardingPaymentMethod__Output } from './persona/v1/OnboardingPaymentMethod';
import type { OnboardingPerson as _persona_v1_OnboardingPerson, OnboardingPerson__Output as _persona_v1_OnboardingPerson__Output } from './persona/v1/OnboardingPerson';
import type { OwnerStopAnswer as _persona_v1_OwnerStopAnswer, OwnerStopAnswer__Output as _persona_v1_OwnerStopAnswer__Output } from './persona/v1/OwnerStopAnswer';
import type { PersonaAgentClient as _persona_v1_PersonaAgentClient, PersonaAgentDefinition as _persona_v1_PersonaAgentDefinition } from './persona/v1/PersonaAgent';
import type { PossibleMatch as _persona_v1_PossibleMatch, PossibleMatch__Output as _persona_v1_PossibleMatch__Output } from './persona/v1/PossibleMatch';
import type { RecordInteractionsRequest as _persona_v1_RecordInteractionsRequest, RecordInteractionsRequest__Output as _persona_v1_RecordInteractionsRequest__Output } from './persona/v1/RecordInteractionsRequest';
import type { RecordInteractionsResponse as _persona_v1_RecordInteractionsResponse, RecordInteractionsResponse__Output as _persona_v1_RecordInteractionsResponse__Output } from './persona/v1/RecordInteractionsResponse';
import type { RecoveryCharge as _persona_v1_RecoveryCharge, RecoveryCharge__Output as _persona_v1_RecoveryCharge__Output } from './persona/v1/RecoveryCharge';
import type { ReportFraudOutcomeRequest as _persona_v1_ReportFraudOutcomeRequest, ReportFraudOutcomeRequest__Output as _persona_v1_ReportFraudOutcomeRequest__Output } from './persona/v1/ReportFraudOutcomeRequest';
import type { ReportPaymentFailureRequest as _persona_v1_ReportPaymentFailureRequest, ReportPaymentFailureRequest__Output as _persona_v1_ReportPaymentFailureRequest__Output } from './persona/v1/ReportPaymentFailureRequest';
import type { ReportPaymentNoLongerOwedRequest as _persona_v1_ReportPaymentNoLongerOwedRequest, ReportPaymentNoLongerOwedRequest__Output as _persona_v1_ReportPaymentNoLongerOwedRequest__Output } from './persona/v1/ReportPaymentNoLongerOwedRequest';
import type { TrustedDevice as _persona_v1_TrustedDevice, TrustedDevice__Output as _persona_v1_TrustedDevice__Output } from './persona/v1/TrustedDevice';
import type { UpdateDeviceTrustScoreRequest as _persona_v1_UpdateDeviceTrustScoreRequest, UpdateDeviceTrustScoreRequest__Output as _persona_v1_UpdateDeviceTrustScoreRequest__Output } from './persona/v1/UpdateDeviceTrustScoreRequest';
import type { WalletItem as _persona_v1_WalletItem, WalletItem__Output as _persona_v1_WalletItem__Output } from './persona/v1/WalletItem';
import type { WorkflowStarted as _persona_v1_WorkflowStarted, WorkflowStarted__Output as _persona_v1_WorkflowStarted__Output } from './persona/v1/WorkflowStarted';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  persona: {
    v1: {
      CheckoutOptions: MessageTypeDefinition<_persona_v1_CheckoutOptions, _persona_v1_CheckoutOptions__Output>
      CustomerContext: MessageTypeDefinition<_persona_v1_CustomerContext, _persona_v1_CustomerContext__Output>
      DeviceTrustScore: MessageTypeDefinition<_persona_v1_DeviceTrustScore, _persona_v1_DeviceTrustScore__Output>
      GetCheckoutOptionsRequest: MessageTypeDefinition<_persona_v1_GetCheckoutOptionsRequest, _persona_v1_GetCheckoutOptionsRequest__Output>
      GetCustomerContextRequest: MessageTypeDefinition<_persona_v1_GetCustomerContextRequest, _persona_v1_GetCustomerContextRequest__Output>
      Interaction: MessageTypeDefinition<_persona_v1_Interaction, _persona_v1_Interaction__Output>
      InteractionResult: MessageTypeDefinition<_persona_v1_InteractionResult, _persona_v1_InteractionResult__Output>
      MarkPaymentMethodInactiveRequest: MessageTypeDefinition<_persona_v1_MarkPaymentMethodInactiveRequest, _persona_v1_MarkPaymentMethodInactiveRequest__Output>
      OnboardCustomerRequest: MessageTypeDefinition<_persona_v1_OnboardCustomerRequest, _persona_v1_OnboardCustomerRequest__Output>
      OnboardCustomerResponse: MessageTypeDefinition<_persona_v1_OnboardCustomerResponse, _persona_v1_OnboardCustomerResponse__Output>
      OnboardingAddress: MessageTypeDefinition<_persona_v1_OnboardingAddress, _persona_v1_OnboardingAddress__Output>
      OnboardingCustomer: MessageTypeDefinition<_persona_v1_OnboardingCustomer, _persona_v1_OnboardingCustomer__Output>
      OnboardingDevice: MessageTypeDefinition<_persona_v1_OnboardingDevice, _persona_v1_OnboardingDevice__Output>
      OnboardingIdentifier: MessageTypeDefinition<_persona_v1_OnboardingIdentifier, _persona_v1_OnboardingIdentifier__Output>
      OnboardingPaymentMethod: MessageTypeDefinition<_persona_v1_OnboardingPaymentMethod, _persona_v1_OnboardingPaymentMethod__Output>
      OnboardingPerson: MessageTypeDefinition<_persona_v1_OnboardingPerson, _persona_v1_OnboardingPerson__Output>
      OwnerStopAnswer: MessageTypeDefinition<_persona_v1_OwnerStopAnswer, _persona_v1_OwnerStopAnswer__Output>
      PersonaAgent: SubtypeConstructor<typeof grpc.Client, _persona_v1_PersonaAgentClient> & { service: _persona_v1_PersonaAgentDefinition }
      PossibleMatch: MessageTypeDefinition<_persona_v1_PossibleMatch, _persona_v1_PossibleMatch__Output>
      RecordInteractionsRequest: MessageTypeDefinition<_persona_v1_RecordInteractionsRequest, _persona_v1_RecordInteractionsRequest__Output>
      RecordInteractionsResponse: MessageTypeDefinition<_persona_v1_RecordInteractionsResponse, _persona_v1_RecordInteractionsResponse__Output>
      RecoveryCharge: MessageTypeDefinition<_persona_v1_RecoveryCharge, _persona_v1_RecoveryCharge__Output>
      ReportFraudOutcomeRequest: MessageTypeDefinition<_persona_v1_ReportFraudOutcomeRequest, _persona_v1_ReportFraudOutcomeRequest__Output>
      ReportPaymentFailureRequest: MessageTypeDefinition<_persona_v1_ReportPaymentFailureRequest, _persona_v1_ReportPaymentFailureRequest__Output>
      ReportPaymentNoLongerOwedRequest: MessageTypeDefinition<_persona_v1_ReportPaymentNoLongerOwedRequest, _persona_v1_ReportPaymentNoLongerOwedRequest__Output>
      TrustedDevice: MessageTypeDefinition<_persona_v1_TrustedDevice, _persona_v1_TrustedDevice__Output>
      UpdateDeviceTrustScoreRequest: MessageTypeDefinition<_persona_v1_UpdateDeviceTrustScoreRequest, _persona_v1_UpdateDeviceTrustScoreRequest__Output>
      WalletItem: MessageTypeDefinition<_persona_v1_WalletItem, _persona_v1_WalletItem__Output>
      WorkflowStarted: MessageTypeDefinition<_persona_v1_WorkflowStarted, _persona_v1_WorkflowStarted__Output>
    }
  }
}

