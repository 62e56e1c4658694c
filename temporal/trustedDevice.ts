/** The trusted-device sighting workflow's contract. */
export const TRUSTED_DEVICE_WORKFLOW_TYPE = 'trustedDeviceWorkflow';

export interface TrustedDeviceInput {
  customer_id: string;
  device_id: string;
  /** YYYY-MM-DD (UTC). */
  seen_on: string;
}

export function trustedDeviceWorkflowId(input: TrustedDeviceInput): string {
  return `trusted-device-${input.customer_id}-${input.device_id}-${input.seen_on}`;
}
