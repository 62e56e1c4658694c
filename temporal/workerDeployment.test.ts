import type { Connection } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { DeploymentError, openWorkflowCount, replacedVersion, type DeploymentStatus } from './workerDeployment';

const status = (...versions: [string, DeploymentStatus['versions'][number]['status']][]): DeploymentStatus => ({
  deploymentName: 'persona',
  current: 'new',
  ramping: null,
  versions: versions.map(([buildId, s]) => ({ buildId, status: s, lastCurrentAt: null, createdAt: null })),
  routingSettled: true,
});

describe('a replaced version (replacedVersion)', () => {
  it('is one that was current and no longer is: draining or drained', () => {
    const s = status(['new', 'current'], ['old', 'draining'], ['older', 'drained'], ['next', 'inactive']);
    expect(['new', 'old', 'older', 'next', 'absent'].filter((b) => replacedVersion(s, b))).toEqual(['old', 'older']);
    // A deployment Temporal does not have yet replaced nothing: a first worker applies what it must.
    expect(replacedVersion(null, 'old')).toBe(false);
  });
});

describe("a version's open workflows (openWorkflowCount)", () => {
  function service(count: unknown) {
    const queries: { namespace: string; query: string }[] = [];
    const fake = {
      countWorkflowExecutions: (req: { namespace: string; query: string }) => {
        queries.push(req);
        return Promise.resolve({ count });
      },
    } as unknown as Connection['workflowService'];
    return { fake, queries };
  }

  it("counts the running workflows on the version, by both of Temporal's spellings of it", async () => {
    const { fake, queries } = service({ toString: () => '4' });
    expect(await openWorkflowCount(fake, { namespace: 'ns', deploymentName: 'persona' }, '0.2.0+ci.7')).toBe(4);
    expect(queries).toEqual([
      {
        namespace: 'ns',
        query:
          "TemporalWorkerDeploymentVersion IN ('persona:0.2.0+ci.7', 'persona.0.2.0+ci.7') " +
          "AND ExecutionStatus = 'Running'",
      },
    ]);
  });

  it('refuses a build id that would change the query, asking nothing', async () => {
    const { fake, queries } = service(0);
    await expect(
      openWorkflowCount(fake, { namespace: 'ns', deploymentName: 'persona' }, "x' OR ExecutionStatus != 'y"),
    ).rejects.toThrow(DeploymentError);
    expect(queries).toEqual([]);
  });
});
