/**
 * A Docker host with the compose plugin, and the Temporal Worker Deployment behind it, as far as
 * scripts/compose-deploy.sh uses them: a stand-in for machines without a Docker engine. The
 * `docker` on PATH (test/support/dockerClient.ts) sends each call here. Containers carry the labels
 * docker-compose.prod.yml gives them, from the variables the script sets; a worker project's
 * containers poll Temporal as their image's build; `deploy promote` and `deploy reap --listed` answer
 * as scripts/deploy.ts does, the reaper's decisions made by the real temporal/workerReaper.ts. Any
 * call it does not know fails loudly, so the script cannot drift from what the stand-in checks.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { repoRoot } from '../../config/env';
import type { DeploymentStatus, VersionState } from '../../temporal/workerDeployment';
import { listedWorkerBuilds, reapWorkerBuilds } from '../../temporal/workerReaper';

export interface Container {
  project: string;
  service: string;
  labels: Record<string, string>;
  createdAt: number;
  state: 'running' | 'exited';
}

interface Call {
  args: string[];
  env: Record<string, string>;
  stdin: string;
}
interface Answer {
  stdout?: string;
  stderr?: string;
  code?: number;
}

const file = 'docker-compose.prod.yml';
const compose = parse(readFileSync(path.join(repoRoot, file), 'utf8'), { merge: true }) as {
  services: Record<string, { labels?: Record<string, string>; deploy?: { replicas?: number }; profiles?: string[] }>;
};

/** `${X:-default}` and `${X:?msg}` in a compose value, from `env` (an unset required one throws). */
function interpolate(value: string, env: Record<string, string>): string {
  return value.replace(/\$\{(\w+)(?::([-?])([^}]*))?\}/g, (_, name: string, op?: string, rest?: string) => {
    const set = env[name];
    if (set) return set;
    if (op === '?') throw new Error(`required variable ${name} is missing a value: ${rest}`);
    return rest ?? '';
  });
}

/** Docker's `{{.CreatedAt}}`: `2026-03-01 12:00:00 +0000 UTC`. */
const dockerTime = (ms: number): string => `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} +0000 UTC`;

export class FakeDocker {
  /** Image tag → the build id its BUILD_ID holds. */
  readonly images = new Map<string, string>();
  containers: Container[] = [];
  network: { name: string; args: string[] } | null = null;
  /** Temporal's view of the Worker Deployment: each version's status, and the current one. */
  current: string | null = null;
  readonly versions = new Map<string, VersionState['status']>();
  /** Every call, as `docker <args>` with the version it ran under. */
  readonly log: string[] = [];
  now = Date.parse('2026-03-01T12:00:00Z');
  /** Answers a call with a failure instead (a worker that cannot start, say), once. */
  failNext: ((args: string[]) => string | null) | null = null;
  private server: Server | null = null;
  private bin = '';
  /** The script's TMPDIR (its lock file), this host's own. */
  tmp = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        void this.answer(JSON.parse(body) as Call).then((a) =>
          res
            .writeHead(200, { 'content-type': 'application/json' })
            .end(JSON.stringify({ stdout: a.stdout ?? '', stderr: a.stderr ?? '', code: a.code ?? 0 })),
        );
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.bin = mkdtempSync(path.join(tmpdir(), 'fake-docker-'));
    this.tmp = mkdtempSync(path.join(tmpdir(), 'fake-docker-tmp-'));
    // Run by this Node, which strips the client's types (Node 22.18 and later).
    const client = path.join(repoRoot, 'test', 'support', 'dockerClient.ts');
    writeFileSync(path.join(this.bin, 'docker'), `#!/bin/sh\nexec '${process.execPath}' '${client}' "$@"\n`);
    chmodSync(path.join(this.bin, 'docker'), 0o755);
  }

  async stop(): Promise<void> {
    await new Promise((resolve) => this.server?.close(resolve));
  }

  /** Runs scripts/compose-deploy.sh with `args` against this host: its exit code and output. */
  run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    const port = (this.server!.address() as AddressInfo).port;
    return new Promise((resolve) => {
      const child = execFile(
        'bash',
        [path.join(repoRoot, 'scripts', 'compose-deploy.sh'), ...args],
        {
          env: {
            PATH: `${this.bin}:${process.env.PATH}`,
            FAKE_DOCKER_URL: `http://127.0.0.1:${port}/`,
            TMPDIR: this.tmp,
            ...env,
          },
          encoding: 'utf8',
        },
        (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
      );
      child.stdin?.end();
    });
  }

  /** A container someone else started, with whatever labels they chose. */
  addForeign(labels: Record<string, string>): void {
    this.containers.push({
      project: labels['com.docker.compose.project'] ?? 'foreign',
      service: labels['com.docker.compose.service'] ?? 'worker',
      labels,
      createdAt: this.now - 86_400_000,
      state: 'running',
    });
  }

  /** The projects with a container of `service`, and the version their labels name. */
  projects(service = 'worker'): Record<string, string> {
    return Object.fromEntries(
      this.containers.filter((c) => c.service === service).map((c) => [c.project, c.labels['persona.version'] ?? '']),
    );
  }

  /** The calls whose arguments contain every one of `words`, in order of the log. */
  calls(...words: string[]): string[] {
    return this.log.filter((l) => words.every((w) => l.includes(w)));
  }

  status(): DeploymentStatus {
    return {
      deploymentName: 'persona',
      current: this.current,
      ramping: null,
      versions: [...this.versions].map(([buildId, status]) => ({
        buildId,
        status,
        lastCurrentAt: null,
        createdAt: null,
      })),
      routingSettled: true,
    };
  }

  private async answer({ args, env, stdin }: Call): Promise<Answer> {
    this.log.push(`docker ${args.join(' ')}${env.PERSONA_VERSION ? ` (PERSONA_VERSION=${env.PERSONA_VERSION})` : ''}`);
    const failure = this.failNext?.(args);
    if (failure) {
      this.failNext = null;
      return { stderr: `${failure}\n`, code: 1 };
    }
    try {
      return await this.dispatch(args, env, stdin);
    } catch (err) {
      return { stderr: `${(err as Error).message}\n`, code: 1 };
    }
  }

  private async dispatch(args: string[], env: Record<string, string>, stdin: string): Promise<Answer> {
    const [verb, ...rest] = args;
    const is = (...expected: string[]) => expected.every((e, i) => rest[i] === e);
    // Read without pulling, without a network, on a read-only file system.
    const cat = ['--rm', '--pull', 'never', '--network', 'none', '--read-only', '--entrypoint', 'cat'];
    if (verb === 'run' && is(...cat) && rest[cat.length + 1] === 'BUILD_ID') {
      const image = rest[cat.length] as string;
      const id = this.images.get(image);
      if (!id) throw new Error(`Unable to find image '${image}' locally`);
      return { stdout: `${id}\n` };
    }
    if (verb === 'network' && rest[0] === 'inspect' && rest[1] === '-f') {
      const format = '{{index .Labels "persona.release"}} {{range .IPAM.Config}}{{.Subnet}} {{.IPRange}}{{end}}';
      if (rest[2] !== format) throw new Error(`fake docker: network inspect does not know the format ${rest[2]}`);
      if (this.network?.name !== rest[3]) return { code: 1, stderr: `Error: No such network: ${rest[3]}` };
      const flag = (f: string) => this.network!.args[this.network!.args.indexOf(f) + 1] ?? '';
      return {
        stdout: `${flag('--label').replace(/^persona\.release=/, '')} ${flag('--subnet')} ${flag('--ip-range')}\n`,
      };
    }
    if (verb === 'network' && rest[0] === 'create') {
      this.network = { name: rest.at(-1) as string, args: rest.slice(1, -1) };
      return { stdout: 'id\n' };
    }
    if (verb === 'ps') return this.ps(rest);
    if (verb === 'compose' && is('-p') && rest[2] === '-f' && rest[3] === file) {
      const project = rest[1] as string;
      const profiles = rest[4] === '--profile' ? [rest[5] as string] : [];
      return this.compose(project, profiles, rest.slice(4 + profiles.length * 2), env, stdin);
    }
    throw new Error(`fake docker: unexpected call: docker ${args.join(' ')}`);
  }

  private ps(rest: string[]): Answer {
    const filters: string[] = [];
    let format = '';
    for (let i = 0; i < rest.length; i++) {
      if (rest[i] === '--filter') filters.push(rest[++i] as string);
      else if (rest[i] === '--format') format = rest[++i] as string;
      else if (rest[i] !== '-a') throw new Error(`fake docker: ps does not know ${rest[i]}`);
    }
    const lines = this.containers
      .filter((c) =>
        filters.every((f) => {
          const [key, value] = f.replace(/^label=/, '').split('=') as [string, string];
          return c.labels[key] === value;
        }),
      )
      .map((c) =>
        format
          .replace(/\{\{\.Label "([^"]+)"\}\}/g, (_, k: string) => c.labels[k] ?? '')
          .replace('{{.CreatedAt}}', dockerTime(c.createdAt))
          .replace('{{.State}}', c.state),
      );
    return { stdout: lines.map((l) => `${l}\n`).join('') };
  }

  /** Creates a service's containers (its replicas), labelled as the compose file says. */
  private create(project: string, service: string, env: Record<string, string>): void {
    const labels = Object.fromEntries(
      Object.entries(compose.services[service]?.labels ?? {}).map(([k, v]) => [k, interpolate(String(v), env)]),
    );
    const image = interpolate('${PERSONA_IMAGE:-persona}:${PERSONA_VERSION:?}', env);
    if (!this.images.has(image)) throw new Error(`Unable to find image '${image}' locally`);
    const same = this.containers.filter((c) => c.project === project && c.service === service);
    // Unchanged configuration: compose leaves the containers as they are.
    if (same.length > 0 && same.every((c) => JSON.stringify(c.labels) === JSON.stringify(labels))) return;
    this.containers = this.containers.filter((c) => !same.includes(c));
    for (let i = 0; i < (compose.services[service]?.deploy?.replicas ?? 1); i++)
      this.containers.push({
        project,
        service,
        labels: {
          ...labels,
          'com.docker.compose.project': project,
          'com.docker.compose.service': service,
        },
        createdAt: this.now,
        state: 'running',
      });
  }

  private async compose(
    project: string,
    profiles: string[],
    args: string[],
    env: Record<string, string>,
    stdin: string,
  ): Promise<Answer> {
    interpolate('${PERSONA_VERSION:?}', env);
    const line = args.join(' ');
    if (line === 'up -d') {
      if (this.network?.name !== (env.PERSONA_NETWORK ?? 'persona-prod'))
        throw new Error(`network ${env.PERSONA_NETWORK} declared as external, but could not be found`);
      // The release's long-running services; the one-shots run and exit (not kept here).
      this.create(project, 'api', env);
      return {};
    }
    const workers = /^up -d --wait --wait-timeout 300 --no-deps( --force-recreate)? worker$/.exec(line);
    if (workers) {
      if (!profiles.includes('worker')) throw new Error('no such service: worker (its profile is not enabled)');
      if (!this.network) throw new Error('network declared as external, but could not be found');
      if (workers[1]) this.containers = this.containers.filter((c) => c.project !== project);
      this.create(project, 'worker', env);
      // Its workers poll as the image's build (they refuse a PERSONA_BUILD_ID that is not it).
      const buildId = this.images.get(interpolate('${PERSONA_IMAGE:-persona}:${PERSONA_VERSION:?}', env)) as string;
      if (env.PERSONA_BUILD_ID && env.PERSONA_BUILD_ID !== buildId)
        throw new Error(`PERSONA_BUILD_ID: ${env.PERSONA_BUILD_ID} is not this image's build id ${buildId}`);
      if (!this.versions.has(buildId)) this.versions.set(buildId, 'inactive');
      return {};
    }
    if (line === 'down') {
      if (!profiles.includes('worker') && this.containers.some((c) => c.project === project && c.service === 'worker'))
        throw new Error('down without --profile worker leaves the worker containers running');
      this.containers = this.containers.filter((c) => c.project !== project);
      return {};
    }
    const deploy = /^run --rm --no-deps (?:-T )?deploy (.*)$/.exec(line);
    if (deploy) return this.deploy((deploy[1] as string).split(' '), env, stdin);
    throw new Error(`fake docker: unexpected call: compose ${line}`);
  }

  /** scripts/deploy.ts in the image of PERSONA_VERSION (its own build id is that image's). */
  private async deploy(args: string[], env: Record<string, string>, stdin: string): Promise<Answer> {
    const own = this.images.get(interpolate('${PERSONA_IMAGE:-persona}:${PERSONA_VERSION:?}', env)) as string;
    const [command, ...rest] = args;
    if (command === 'promote') {
      const buildId = rest[0] ?? own;
      const polling = this.containers.some(
        (c) => c.service === 'worker' && c.state === 'running' && c.labels['persona.build-id'] === buildId,
      );
      if (!polling) throw new Error(`version persona.${buildId} has not registered within 60 s`);
      const previous = this.current;
      if (previous && previous !== buildId) this.versions.set(previous, 'draining');
      this.versions.set(buildId, 'current');
      this.current = buildId;
      return { stdout: `persona.${buildId} is current (before: persona.${previous ?? 'unversioned workers'})\n` };
    }
    if (command === 'status') return { stdout: `current: persona.${this.current}\n` };
    if (command === 'reap' && rest[0] === '--listed' && rest[1] === '--grace-minutes') {
      let stdout = '';
      let stderr = '';
      await reapWorkerBuilds(
        {
          list: () => Promise.resolve(listedWorkerBuilds(stdin)),
          remove: (build) => {
            stdout += `stop ${build.name}\n`;
            return Promise.resolve('deleted');
          },
          status: () => Promise.resolve(this.status()),
          openWorkflows: () => Promise.resolve(0),
          log: (l) => (stderr += `${l}\n`),
        },
        {
          releaseBuildId: own,
          graceMs: Number(rest[2]) * 60_000,
          dryRun: rest[3] === '--dry-run',
          removedAs: 'to stop',
          now: () => this.now,
        },
      );
      return { stdout, stderr };
    }
    throw new Error(`fake docker: deploy does not know ${args.join(' ')}`);
  }
}
