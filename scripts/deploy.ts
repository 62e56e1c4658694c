/**
 * The deploy steps of Worker Versioning (temporal/workerDeployment.ts), for the deployment
 * PERSONA_DEPLOYMENT_NAME in TEMPORAL_NAMESPACE:
 *   npm run deploy:status                          current, ramping and every version's state
 *   npm run deploy:promote [-- <build id>]         make a version current (waits until its workers poll)
 *   npm run deploy:ramp -- <percent> [<build id>]  send a share of new starts to a version (0 ends the ramp)
 *   npm run deploy:rollback                        end the ramp, or make the previous version current again
 *   node scripts/deploy.js reap --selector <labels> [--grace-minutes <n>] [--dry-run]
 *       in a pod (the chart's CronJob <release>-worker-reaper): delete the Deployments of older
 *       worker builds whose versions have drained (temporal/workerReaper.ts)
 *   node scripts/deploy.js reap --listed [--grace-minutes <n>] [--dry-run]
 *       for scripts/compose-deploy.sh: the worker builds read from stdin (listedWorkerBuilds), and
 *       `stop <compose project>` written to stdout for each that may go; the log goes to stderr
 * The build id defaults to this checkout's (PERSONA_BUILD_ID, or the one derived from the workflow
 * code: config/buildId.ts). docs/deployment.md walks through a deploy, docs/kubernetes.md the reaper.
 */
import { text } from 'node:stream/consumers';
import { parseArgs } from 'node:util';
import { deleteDeployment, inClusterAccess, listDeployments } from '../clients/kubernetes';
import { ConfigError, loadSettings, workerDeploymentVersion } from '../config/env';
import { connectTemporal } from '../temporal/connection';
import { taskQueuesOf } from '../temporal/taskQueues';
import {
  deploymentStatus,
  DeploymentError,
  openWorkflowCount,
  promote,
  ramp,
  rollback,
  type DeploymentTarget,
} from '../temporal/workerDeployment';
import { listedWorkerBuilds, reapWorkerBuilds, workerBuildOf, type ReapDeps } from '../temporal/workerReaper';

const USAGE =
  'usage: deploy.ts status | promote [build id] | ramp <percent> [build id] | rollback | ' +
  'reap --selector <labels> | --listed [--grace-minutes <n>] [--dry-run]';

type WorkflowService = Awaited<ReturnType<typeof connectTemporal>>['connection']['workflowService'];

/**
 * `reap`: this release's worker builds and their versions: on Kubernetes its Deployments (by the label
 * selector the chart passes), deleted here; in compose (`--listed`) its worker projects, read from
 * stdin and handed back on stdout for the script to stop.
 */
async function reap(service: WorkflowService, target: DeploymentTarget, buildId: string, args: string[]) {
  const { values } = parseArgs({
    args,
    options: {
      selector: { type: 'string' },
      listed: { type: 'boolean', default: false },
      'grace-minutes': { type: 'string', default: '60' },
      'dry-run': { type: 'boolean', default: false },
    },
  });
  const graceMinutes = Number(values['grace-minutes']);
  // A selector is required: without one the reaper would judge every Deployment in the namespace.
  if (!values.selector === !values.listed || !Number.isFinite(graceMinutes) || graceMinutes < 0)
    throw new DeploymentError(USAGE);
  const temporal = {
    status: () => deploymentStatus(service, target),
    openWorkflows: (id: string) => openWorkflowCount(service, target, id),
  };
  const opts = { releaseBuildId: buildId, graceMs: graceMinutes * 60_000, dryRun: values['dry-run'] };
  if (values.listed) {
    const builds = listedWorkerBuilds(await text(process.stdin));
    const deps: ReapDeps = {
      ...temporal,
      list: () => Promise.resolve(builds),
      remove: (build) => {
        process.stdout.write(`stop ${build.name}\n`);
        return Promise.resolve('deleted');
      },
      log: (line) => console.error(line),
    };
    await reapWorkerBuilds(deps, { ...opts, removedAs: 'to stop' });
    return;
  }
  const selector = values.selector as string;
  const access = inClusterAccess();
  const deps: ReapDeps = {
    ...temporal,
    list: async () => (await listDeployments(access, selector)).map(workerBuildOf),
    remove: (build) => deleteDeployment(access, build),
    log: (line) => console.log(line),
  };
  await reapWorkerBuilds(deps, opts);
}

async function main(): Promise<void> {
  const [command, ...args] = process.argv.slice(2);
  const settings = loadSettings();
  const own = workerDeploymentVersion(settings);
  const target: DeploymentTarget = {
    namespace: settings.TEMPORAL_NAMESPACE,
    deploymentName: own.deploymentName,
    identity: `persona-deploy ${command ?? ''}`.trim(),
  };
  // A version serves every kind of work (temporal/taskQueues.ts), whichever of its workers runs which:
  // it takes tasks only once its workers have polled all four queues.
  const taskQueues = Object.values(taskQueuesOf(settings.TEMPORAL_TASK_QUEUE));
  const { connection } = await connectTemporal(settings);
  const service = connection.workflowService;
  const name = (buildId: string | null) => (buildId ? `${target.deploymentName}.${buildId}` : 'unversioned workers');
  try {
    switch (command) {
      case 'status': {
        const s = await deploymentStatus(service, target);
        console.log(`this checkout's version: ${name(own.buildId)}`);
        if (!s) {
          console.log(
            `deployment ${target.deploymentName}: no worker of it has polled ${settings.TEMPORAL_ADDRESS} yet`,
          );
          break;
        }
        console.log(`current: ${name(s.current)}`);
        console.log(`ramping: ${s.ramping ? `${name(s.ramping.buildId)} at ${s.ramping.percentage}%` : 'none'}`);
        if (!s.routingSettled) console.log('(the last change is still being passed to the task queues)');
        for (const v of s.versions)
          console.log(
            `  ${v.buildId.padEnd(24)} ${v.status.padEnd(9)} created ${v.createdAt ?? '?'}` +
              (v.lastCurrentAt ? `, last made current ${v.lastCurrentAt}` : ''),
          );
        break;
      }
      case 'promote': {
        const buildId = args[0] ?? own.buildId;
        const { previous } = await promote(service, target, buildId, { taskQueues });
        console.log(`${name(buildId)} is current (before: ${name(previous)})`);
        break;
      }
      case 'ramp': {
        const percentage = Number(args[0]);
        if (args[0] === undefined || Number.isNaN(percentage)) throw new DeploymentError(USAGE);
        const buildId = percentage === 0 && args[1] === undefined ? null : (args[1] ?? own.buildId);
        await ramp(service, target, buildId, percentage, { taskQueues });
        console.log(buildId ? `${name(buildId)} ramping at ${percentage}%` : 'ramp ended');
        break;
      }
      case 'rollback': {
        const done = await rollback(service, target);
        console.log(
          'rampEnded' in done
            ? `ramp of ${name(done.rampEnded)} ended: new starts go to the current version`
            : `${name(done.to)} is current again (was ${name(done.from)})`,
        );
        break;
      }
      case 'reap':
        await reap(service, target, own.buildId, args);
        break;
      default:
        throw new DeploymentError(USAGE);
    }
  } finally {
    await connection.close();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError || err instanceof Error ? err.message : err);
  process.exit(1);
});
