/**
 * The event sequencer a worker runs (workers/eventSequencer.ts), run for a benchmark in a process
 * of its own, as a worker's is in production: the api processes the benchmark starts hear of
 * every write as they would (the read cache serves hits only while the log is drained), and the
 * load generator's event loop never delays the sequencer's rounds. `topic`: the invalidations go
 * to a Kafka topic of this run on the stack's Kafka, which the api reads (`env` says so, and
 * points the api's other topics at this run's, where it has nothing to do); `poll`: the api polls
 * the numbered log itself.
 * Needs the local stack with no worker running (its sequencer would share the lease).
 *
 * Run as a process (`startBenchSequencer` does): `tsx scripts/benchSequencer.ts <topic|poll> <run>`;
 * it prints `ready <env as JSON>` once it runs, and stops on SIGTERM.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/env';
import { loadConfig } from '../config/env';
import { createKafkaProducer, ensureTopics } from '../clients/kafka';
import { createDriver } from '../graph';
import { graphFromConfig } from '../runtime/graph';
import { createLogger } from '../runtime/logger';
import { localKafkaBrokers } from '../stack/install';
import { startProcess, stopProcess } from '../test/support/processes';
import { EventSequencer } from '../workers/eventSequencer';

export interface BenchSequencer {
  /** What an api process of the benchmark needs in its environment to hear of the writes. */
  env: Record<string, string>;
  /** The sequencer's process. */
  pid: number | undefined;
  stop(): Promise<void>;
}

/** Starts the sequencer's process and waits until it runs (a minute at most). */
export async function startBenchSequencer(mode: 'topic' | 'poll', run: string): Promise<BenchSequencer> {
  const proc = startProcess('scripts/benchSequencer.ts', {}, [], [mode, run]);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ready = /^ready (.*)$/m.exec(proc.output());
    if (ready) {
      let stopping = false;
      // A sequencer that dies leaves the caches without hits: said at once, not found in the figures.
      void proc.exited.then((code) => {
        if (!stopping) console.error(`bench: the event sequencer exited (${String(code)}):\n${proc.output()}`);
      });
      return {
        env: JSON.parse(ready[1] as string) as Record<string, string>,
        pid: proc.child.pid,
        stop: () => {
          stopping = true;
          return stopProcess(proc);
        },
      };
    }
    if (proc.child.exitCode !== null || Date.now() > deadline) {
      await stopProcess(proc);
      throw new Error(`the benchmark's event sequencer did not start:\n${proc.output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function runSequencer(config: Config, mode: 'topic' | 'poll', run: string): Promise<void> {
  const driver = createDriver(config);
  const graph = graphFromConfig(driver, config);
  const brokers = localKafkaBrokers(config);
  const env: Record<string, string> = {};
  const producer = mode === 'topic' ? createKafkaProducer({ kafkaBrokers: brokers }, 'bench-sequencer') : undefined;
  const topic = `bench.${run}.invalidations`;
  if (mode === 'topic') {
    await ensureTopics({ kafkaBrokers: brokers } as never, [{ name: topic, partitions: 1, retentionMs: 600_000 }]);
    Object.assign(env, {
      KAFKA_BROKERS: brokers.join(','),
      PERSONA_KAFKA_INVALIDATIONS_TOPIC: topic,
      // The agents' topics of this run: the api's consumer of them has nothing to do.
      PERSONA_KAFKA_PAYMENT_FAILURES_TOPIC: `bench.${run}.payment-failures`,
      PERSONA_KAFKA_FRAUD_OUTCOMES_TOPIC: `bench.${run}.fraud-outcomes`,
      PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC: `bench.${run}.routing-outcomes`,
      PERSONA_KAFKA_DEAD_LETTER_TOPIC: `bench.${run}.dead-letters`,
      PERSONA_KAFKA_EVENTS_TOPIC: `bench.${run}.events`,
      PERSONA_KAFKA_CONSUMER_GROUP: `bench-${run}`,
    });
  }
  const sequencer = new EventSequencer(
    graph,
    {
      pollMs: config.PERSONA_EVENT_SEQUENCER_POLL_MS,
      tickMs: config.PERSONA_EVENT_SEQUENCER_TICK_MS,
      batch: 500,
      ...(producer ? { kafka: { producer, topic, keys: config.payloadKeys } } : {}),
    },
    createLogger('bench-sequencer', 'warn'),
  );
  sequencer.start();
  // The sequencer's own timers do not hold a process open (a worker has its own reasons to live).
  const alive = setInterval(() => undefined, 60_000);
  process.once('SIGTERM', () => {
    clearInterval(alive);
    void (async () => {
      await sequencer.stop();
      await producer?.close();
      await driver.close();
      process.exit(0);
    })();
  });
  console.log(`ready ${JSON.stringify(env)}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [mode, run] = process.argv.slice(2);
  if ((mode !== 'topic' && mode !== 'poll') || !run) {
    console.error('usage: tsx scripts/benchSequencer.ts <topic|poll> <run>');
    process.exit(2);
  }
  runSequencer(loadConfig(), mode, run).catch((err: unknown) => {
    console.error(`bench sequencer failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  });
}
