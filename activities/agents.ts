/** Activities that talk to the platform's other agents. */
import { ApplicationFailure } from '@temporalio/activity';
import {
  ChimeraRejectedError,
  type BehavioralProfileRequest,
  type ChimeraClient,
  type TrustedDeviceSighting,
} from '../clients/chimera';

/** Chimera's refusals are final; everything else is retried by Temporal. */
async function callChimera<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof ChimeraRejectedError)
      throw ApplicationFailure.create({ type: err.name, message: err.message, nonRetryable: true });
    throw err;
  }
}

export function createAgentActivities({ chimera }: { chimera: ChimeraClient }) {
  return {
    /** Asks Chimera to start a behavioural profile. Deduplicated by the request id. */
    async requestBehavioralProfile(req: BehavioralProfileRequest): Promise<{ reference: string }> {
      return callChimera(() => chimera.requestBehavioralProfile(req));
    },
    /** Tells Chimera a checkout saw the customer on a trusted device. Deduplicated by the request id. */
    async reportTrustedDevice(sighting: TrustedDeviceSighting): Promise<void> {
      return callChimera(() => chimera.reportTrustedDevice(sighting));
    },
  };
}

export type AgentActivities = ReturnType<typeof createAgentActivities>;
