/** Activities that talk to the platform's other agents. */
import { ApplicationFailure } from '@temporalio/activity';
import { ChimeraRejectedError, type BehavioralProfileRequest, type ChimeraClient } from '../clients/chimera';

export function createAgentActivities({ chimera }: { chimera: ChimeraClient }) {
  return {
    /** Asks Chimera to start a behavioural profile. Deduplicated by the request id. */
    async requestBehavioralProfile(req: BehavioralProfileRequest): Promise<{ reference: string }> {
      try {
        return await chimera.requestBehavioralProfile(req);
      } catch (err) {
        if (err instanceof ChimeraRejectedError) {
          throw ApplicationFailure.create({ type: err.name, message: err.message, nonRetryable: true });
        }
        throw err;
      }
    },
  };
}

export type AgentActivities = ReturnType<typeof createAgentActivities>;
