import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import { describe, expect, it } from 'vitest';
import { envSchema, type Config } from '../config/env';
import type { Logger } from '../runtime/logger';
import { applyWorkerSchedules } from './schedules';

const { WorkerDeploymentVersionStatus } = proto.temporal.api.enums.v1;

/** A worker of build `old` that runs no deliveries (so only the Schedules are applied). */
const config = {
  ...envSchema.parse({}),
  PERSONA_SCHEDULES: 'apply',
  PERSONA_DEPLOYMENT_NAME: 'persona',
  PERSONA_BUILD_ID: 'old',
  PERSONA_WORKER_KINDS: ['charges'],
} as unknown as Config;

/** A client whose deployment has `old` in the given state; records the Schedules it is asked to create. */
function fakes(describe: () => Promise<unknown>) {
  const created: string[] = [];
  const client = {
    workflowService: { describeWorkerDeployment: describe },
    schedule: {
      create: (o: { scheduleId: string }) => {
        created.push(o.scheduleId);
        return Promise.resolve();
      },
    },
  } as unknown as Client;
  const logged: string[] = [];
  const logger = {
    info: (a: unknown, b?: string) => logged.push(b ?? String(a)),
    warn: (_: unknown, msg: string) => logged.push(msg),
  } as unknown as Logger;
  return { client, created, logged, logger };
}
const withOld = (status: number) => () =>
  Promise.resolve({
    workerDeploymentInfo: {
      routingConfig: { currentDeploymentVersion: { buildId: 'new' } },
      versionSummaries: [
        {
          deploymentVersion: { buildId: 'new' },
          status: WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_CURRENT,
        },
        { deploymentVersion: { buildId: 'old' }, status },
      ],
    },
  });

describe("a worker's schedules at start (applyWorkerSchedules)", () => {
  it.each([
    ['draining', WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINING],
    ['drained', WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINED],
  ])('leaves them to the current version when its own is %s (a kept older build restarting)', async (_, status) => {
    const f = fakes(withOld(status));
    expect(await applyWorkerSchedules(f.client, config, f.logger)).toEqual([]);
    expect(f.created).toEqual([]);
    expect(f.logged).toEqual([
      "this worker's version persona.old is no longer current: the Temporal Schedules, the event relay and the " +
        "Kafka publisher are the current version's to apply",
    ]);
  });

  it.each<[string, () => Promise<unknown>]>([
    ['new (inactive)', withOld(WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_INACTIVE)],
    ['current', withOld(WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_CURRENT)],
    ['in no deployment Temporal has', () => Promise.reject(Object.assign(new Error('not found'), { code: 5 }))],
    ['not told (Temporal refused)', () => Promise.reject(new Error('permission denied'))],
  ])('applies them when its version is %s', async (_, describe) => {
    const f = fakes(describe);
    await applyWorkerSchedules(f.client, config, f.logger);
    expect(f.created.length).toBeGreaterThan(0);
    expect(f.logged.some((l) => l.includes('no longer current'))).toBe(false);
  });
});
