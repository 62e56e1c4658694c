import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSettings } from '../config/env';
import { localKafkaBrokers, localKafkaNodes, localKafkaSecureEnv, stackPaths } from './install';
import { isAlive } from './process';
import { kafkaServerProperties, newKafkaClusterId, stackDown } from './services';

const props = (text: string): Map<string, string> =>
  new Map(
    text
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );

describe('a new Kafka cluster id', () => {
  it('is 22 characters of base64url that never start with "-" (the StorageTool would take it for an option)', () => {
    // One id in 64 started with "-" and a CI run failed to format a private node's storage.
    for (let i = 0; i < 5000; i++) expect(newKafkaClusterId()).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
  });
});

describe('the local Kafka nodes', () => {
  it('alone: node 1, one voter, replication 1', () => {
    const p = props(
      kafkaServerProperties({ home: '/k', host: '127.0.0.1', port: 9092, controllerPort: 9093, heap: '256m' }),
    );
    expect(p.get('node.id')).toBe('1');
    expect(p.get('controller.quorum.voters')).toBe('1@127.0.0.1:9093');
    expect(p.get('default.replication.factor')).toBe('1');
    expect(p.get('min.insync.replicas')).toBe('1');
    expect(p.get('offsets.topic.replication.factor')).toBe('1');
  });

  it('three: every node votes; replication 3, min ISR 2 where not set otherwise; no unclean election', () => {
    const voters = [1, 2, 3].map((id) => ({ id, host: '127.0.0.1', controllerPort: 9093 + 10 * (id - 1) }));
    const p = props(
      kafkaServerProperties({
        home: '/k2',
        host: '127.0.0.1',
        port: 9102,
        controllerPort: 9103,
        heap: '256m',
        cluster: { nodeId: 2, voters, clusterId: 'abc' },
      }),
    );
    expect(p.get('node.id')).toBe('2');
    expect(p.get('controller.quorum.voters')).toBe('1@127.0.0.1:9093,2@127.0.0.1:9103,3@127.0.0.1:9113');
    expect(p.get('default.replication.factor')).toBe('3');
    expect(p.get('min.insync.replicas')).toBe('2');
    expect(p.get('offsets.topic.replication.factor')).toBe('3');
    expect(p.get('transaction.state.log.min.isr')).toBe('2');
    expect(p.get('unclean.leader.election.enable')).toBe('false');
    expect(Number(p.get('log.cleaner.dedupe.buffer.size'))).toBeLessThan(64 * 1024 * 1024);
    // Kafka's own broker session (9 s, a heartbeat every 2 s) unless one is asked for.
    expect(p.has('broker.session.timeout.ms')).toBe(false);
    expect(p.has('broker.heartbeat.interval.ms')).toBe(false);
  });

  it('a node given a broker session: the controllers fence it that long after its last heartbeat', () => {
    const node = { home: '/k', host: '127.0.0.1', port: 9092, controllerPort: 9093, heap: '256m' };
    const p = props(kafkaServerProperties({ ...node, brokerSession: { timeoutMs: 4000, heartbeatMs: 500 } }));
    expect(p.get('broker.session.timeout.ms')).toBe('4000');
    expect(p.get('broker.heartbeat.interval.ms')).toBe('500');
  });

  it('PERSONA_KAFKA_NODES=3 runs node n ten ports above node 1, each in a folder of its own', () => {
    const s = loadSettings({ PERSONA_KAFKA_NODES: '3', PERSONA_STACK_DIR: '/stack' });
    expect(localKafkaNodes(s).map((n) => [n.id, n.port, n.controllerPort, n.securePort, n.home])).toEqual([
      [1, 9092, 9093, 9094, '/stack/kafka/cluster/node-1'],
      [2, 9102, 9103, 9104, '/stack/kafka/cluster/node-2'],
      [3, 9112, 9113, 9114, '/stack/kafka/cluster/node-3'],
    ]);
    expect(localKafkaBrokers(s)).toEqual(['127.0.0.1:9092', '127.0.0.1:9102', '127.0.0.1:9112']);
    expect(localKafkaNodes(loadSettings({ PERSONA_STACK_DIR: '/stack' }))).toEqual([
      { id: 1, name: 'kafka', port: 9092, controllerPort: 9093, securePort: 9094, home: '/stack/kafka/home' },
    ]);
    expect(() => loadSettings({ PERSONA_KAFKA_NODES: '2' })).toThrow(/PERSONA_KAFKA_NODES/);
  });

  it("gives npm run dev every node's secure listener and replication 3", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'persona-stack-'));
    const password = stackPaths(dir).kafkaTls.saslPassword;
    mkdirSync(path.dirname(password), { recursive: true });
    writeFileSync(password, 'secret\n');
    const s = loadSettings({ PERSONA_KAFKA_NODES: '3', PERSONA_STACK_DIR: dir });
    const env = localKafkaSecureEnv(s);
    expect(env.KAFKA_BROKERS).toBe('127.0.0.1:9094,127.0.0.1:9104,127.0.0.1:9114');
    expect(env.PERSONA_KAFKA_REPLICATION).toBe('3');
    expect(env.KAFKA_SASL_PASSWORD).toBe('secret');
    rmSync(dir, { recursive: true });
  });
});

describe('stack:down', () => {
  const names = ['neo4j', 'temporal', 'kafka', 'kafka-2', 'kafka-3', 'gateway'];
  /** A stand-in for a service: on SIGTERM it says so, and stops once `go` exists. */
  async function standIn(pids: string, name: string, go: string): Promise<{ pid: number; termed: () => boolean }> {
    const script =
      "const fs = require('node:fs');" +
      `process.on('SIGTERM', () => { console.log('term'); ` +
      `setInterval(() => fs.existsSync(${JSON.stringify(go)}) && process.exit(0), 20); });` +
      "console.log('ready'); setInterval(() => undefined, 1000);";
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    while (!out.includes('ready')) await once(child.stdout, 'data');
    writeFileSync(path.join(pids, `${name}.pid`), String(child.pid));
    return { pid: child.pid as number, termed: () => out.includes('term') };
  }

  it('stops every service at once, one line each: as long as the slowest, not their sum', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'persona-stack-'));
    const pids = stackPaths(dir).pids;
    mkdirSync(pids, { recursive: true });
    const go = path.join(dir, 'go');
    const running = await Promise.all(names.map((name) => standIn(pids, name, go)));
    const lines: string[] = [];
    try {
      const down = stackDown(loadSettings({ PERSONA_KAFKA_NODES: '3', PERSONA_STACK_DIR: dir }), (l) => lines.push(l));
      // Every service is asked to stop while none has stopped (none may before `go`): one after
      // another, the first would be waited for and the others never asked.
      for (let tries = 0; running.some((r) => !r.termed()); tries++) {
        if (tries > 500)
          throw new Error(`${running.filter((r) => r.termed()).length} of 6 asked to stop while none had stopped`);
        await sleep(20);
      }
      writeFileSync(go, '');
      await down;
      expect(lines.map((l) => l.replace(/ \(\d+\.\ds\)$/, '')).sort()).toEqual(
        names.map((n) => `${n}: stopped`).sort(),
      );
      expect(running.filter((r) => isAlive(r.pid))).toEqual([]);
    } finally {
      for (const r of running) if (isAlive(r.pid)) process.kill(r.pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names each service of the stack that was not running, and no node of three it no longer has', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'persona-stack-'));
    const lines: string[] = [];
    await stackDown(loadSettings({ PERSONA_STACK_DIR: dir }), (l) => lines.push(l));
    expect(lines.sort()).toEqual(['gateway', 'kafka', 'neo4j', 'temporal'].map((n) => `${n}: was not running`));
    rmSync(dir, { recursive: true, force: true });
  });
});
