/**
 * One Kafka node in KRaft combined mode: its server.properties (alone, or one of a cluster of
 * three, with a TLS+SASL listener when asked), a new cluster id, how to start it (formatting its
 * log folder the first time), and whether it answers. Used by `stack:up` (stack/services.ts) and by
 * tests' private nodes (test/support/privateServices.ts).
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Admin } from '@platformatic/kafka';
import { KAFKA_LOG4J, type StackPaths } from './install';
import { QUICK_START_JVM, type Launch } from './launch';

/** One Kafka node in KRaft combined mode (broker and controller in one JVM), its data under `home`. */
export interface KafkaInstance {
  home: string;
  host: string;
  port: number;
  controllerPort: number;
  heap: string;
  /**
   * Its place in a cluster: its node id, every node's controller (each node votes), and the id the
   * cluster's logs are formatted with (the same on every node). Alone (node 1, one voter) when absent.
   */
  cluster?: { nodeId: number; voters: { id: number; host: string; controllerPort: number }[]; clusterId: string };
  /** A second listener with TLS and SASL/PLAIN (the one `npm run dev` connects to), when given. */
  secure?: { port: number; keystore: string; keystorePassword: string; users: Record<string, string> };
  /** Started to live a short while (a test's private node): see QUICK_START_JVM (stack/launch.ts). */
  quickStart?: boolean;
  /**
   * How long the controllers wait for a node's heartbeat before they fence it and its partitions
   * get new leaders, and how often it sends one. Kafka's 9 s and 2 s when absent: the stack's nodes
   * and production keep them; a test that kills nodes on purpose may wait less.
   */
  brokerSession?: { timeoutMs: number; heartbeatMs: number };
}

const PLAIN_LOGIN_MODULE = 'org.apache.kafka.common.security.plain.PlainLoginModule';

/** JAAS's quoting: a value between double quotes, with `\` and `"` escaped. */
const jaasQuote = (v: string): string => `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

/**
 * The node's server.properties. Alone: replication 1. In a cluster of three or more: replication
 * 3 and `min.insync.replicas` 2 for every topic made without its own (Persona's set theirs,
 * clients/kafka.ts) and for Kafka's own (consumer offsets, transactions), and no unclean leader
 * election — a write acknowledged by every in-sync replica is on two nodes before the producer
 * hears of it, and only one of those can lead. No topic is made by a stray produce.
 */
export function kafkaServerProperties(k: KafkaInstance): string {
  const sec = k.secure;
  const secure = sec
    ? [
        'listener.name.secure.sasl.enabled.mechanisms=PLAIN',
        `listener.name.secure.plain.sasl.jaas.config=${PLAIN_LOGIN_MODULE} required ` +
          `${Object.entries(sec.users)
            .map(([user, password]) => `user_${user}=${jaasQuote(password)}`)
            .join(' ')};`,
        'ssl.keystore.type=PKCS12',
        `ssl.keystore.location=${sec.keystore}`,
        `ssl.keystore.password=${sec.keystorePassword}`,
        'ssl.client.auth=none',
      ]
    : [];
  const voters = k.cluster?.voters ?? [{ id: 1, host: k.host, controllerPort: k.controllerPort }];
  const replication = Math.min(3, voters.length);
  const minIsr = replication >= 3 ? 2 : 1;
  return [
    'process.roles=broker,controller',
    `node.id=${k.cluster?.nodeId ?? 1}`,
    `controller.quorum.voters=${voters.map((v) => `${v.id}@${v.host}:${v.controllerPort}`).join(',')}`,
    `listeners=PLAINTEXT://${k.host}:${k.port},CONTROLLER://${k.host}:${k.controllerPort}` +
      (sec ? `,SECURE://${k.host}:${sec.port}` : ''),
    `advertised.listeners=PLAINTEXT://${k.host}:${k.port}` + (sec ? `,SECURE://${k.host}:${sec.port}` : ''),
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT' + (sec ? ',SECURE:SASL_SSL' : ''),
    'inter.broker.listener.name=PLAINTEXT',
    ...secure,
    `log.dirs=${path.join(k.home, 'data')}`,
    'num.partitions=1',
    `default.replication.factor=${replication}`,
    `min.insync.replicas=${minIsr}`,
    'unclean.leader.election.enable=false',
    `offsets.topic.replication.factor=${replication}`,
    'offsets.topic.num.partitions=4',
    `transaction.state.log.replication.factor=${replication}`,
    `transaction.state.log.min.isr=${minIsr}`,
    `share.coordinator.state.topic.replication.factor=${replication}`,
    `share.coordinator.state.topic.min.isr=${minIsr}`,
    'group.initial.rebalance.delay.ms=0',
    'auto.create.topics.enable=false',
    ...(k.brokerSession
      ? [
          `broker.session.timeout.ms=${k.brokerSession.timeoutMs}`,
          `broker.heartbeat.interval.ms=${k.brokerSession.heartbeatMs}`,
        ]
      : []),
    // The log cleaner (compacted topics: consumer offsets) takes its dedupe buffer from the heap at
    // start, 128 MiB by default: half the local heap. A node of three, with replica fetchers too,
    // died of it at start (OutOfMemoryError in SkimpyOffsetMap). 32 MiB is plenty for test topics.
    'log.cleaner.dedupe.buffer.size=33554432',
    '',
  ].join('\n');
}

/** A new KRaft cluster id: 16 random bytes, base64url (what Kafka's `random-uuid` prints). */
export function newKafkaClusterId(): string {
  // Never one that starts with '-': Kafka's StorageTool would read `-t -xJo…` as an unknown option
  // and refuse to format (one id in 64; Kafka's own Uuid.randomUuid skips them for that reason).
  for (;;) {
    const id = Buffer.from(randomUUID().replace(/-/g, ''), 'hex').toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/**
 * How to start the node: writes its configuration and, the first time, formats its log folder
 * (Kafka's StorageTool, with the cluster's id, or a new one for a node alone). SIGTERM stops it cleanly.
 */
export function kafkaLaunch(paths: StackPaths, k: KafkaInstance): Launch {
  mkdirSync(k.home, { recursive: true });
  const props = path.join(k.home, 'server.properties');
  // It holds the keystore's password and the SASL users': readable by this user only.
  writeFileSync(props, kafkaServerProperties(k), { mode: 0o600 });
  chmodSync(props, 0o600);
  const jvm = [
    `-Xmx${k.heap}`,
    `-Xms${k.heap}`,
    '-XX:+UseG1GC',
    `-Dlog4j2.configurationFile=${KAFKA_LOG4J}`,
    '-cp',
    path.join(paths.kafkaLib, '*'),
  ];
  const node = k.quickStart ? [...QUICK_START_JVM, ...jvm] : jvm;
  if (!existsSync(path.join(k.home, 'data', 'meta.properties'))) {
    const clusterId = k.cluster?.clusterId ?? newKafkaClusterId();
    // A one-shot tool: always the quick compiler.
    execFileSync(
      'java',
      [...QUICK_START_JVM, ...jvm, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', props],
      {
        stdio: 'ignore',
      },
    );
  }
  return { command: 'java', args: [...node, 'kafka.Kafka', props], env: process.env };
}

/** True once the broker answers a metadata request with itself as a broker. */
export async function kafkaAnswers(brokers: string[]): Promise<boolean> {
  const admin = new Admin({ clientId: 'persona-stack', bootstrapBrokers: brokers, timeout: 3000, retries: 0 });
  try {
    const metadata = await admin.metadata({ topics: [] });
    return metadata.brokers.size > 0;
  } finally {
    await admin.close();
  }
}
