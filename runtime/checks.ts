/** Readiness checks for Persona's two dependencies. */
import type { Driver } from 'neo4j-driver';
import { pingNeo4j } from '../graph/driver';
import type { ReadinessCheck } from './health';

export function neo4jCheck(driver: Driver, database: string): ReadinessCheck {
  return { name: 'neo4j', check: () => pingNeo4j(driver, database) };
}

/** Anything with a Temporal WorkflowService: the client's Connection or the worker's NativeConnection. */
interface HasWorkflowService {
  workflowService: { describeNamespace(req: { namespace: string }): Promise<unknown> };
  withDeadline<T>(deadline: number, fn: () => Promise<T>): Promise<T>;
}

/** The namespace must answer within the deadline (shorter than the readiness timeout). */
export function temporalCheck(connection: HasWorkflowService, namespace: string, deadlineMs = 1000): ReadinessCheck {
  return {
    name: 'temporal',
    check: async () => {
      await connection.withDeadline(Date.now() + deadlineMs, () =>
        connection.workflowService.describeNamespace({ namespace }),
      );
    },
  };
}
