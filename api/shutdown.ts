/**
 * The api's clean stop on SIGTERM or SIGINT: what api/main.ts started, stopped in order (runtime/shutdown.ts
 * runs the steps, logs each and exits).
 */
import type { ServerType } from '@hono/node-server';
import type { Connection } from '@temporalio/client';
import type { Driver } from 'neo4j-driver';
import type { KafkaProducer } from '../clients/kafka';
import type { Logger } from '../runtime/logger';
import { onShutdown } from '../runtime/shutdown';
import type { Tracing } from '../runtime/tracing';
import type { ApiDeps } from './deps';
import type { SupervisedConsumer } from './kafkaConsumer';
import type { GrpcServer } from './servers';

/** Everything the api process started or opened; undefined (or null) what it did not. */
export interface ApiResources {
  stopWatching: () => void;
  consumer: SupervisedConsumer | undefined;
  kafka: KafkaProducer | undefined;
  deps: ApiDeps;
  grpc: GrpcServer;
  server: ServerType;
  connection: Connection;
  probe: Connection;
  driver: Driver;
  probeDriver: Driver;
  tracing: Tracing | null;
}

/**
 * Registers the stop: first what brings work in (the readiness watch, the Kafka consumer, the read
 * cache's tail, the gRPC and HTTP servers, which let calls under way finish), then the connections
 * those calls used, the traces flushed last.
 */
export function stopOnShutdown(logger: Logger, r: ApiResources): void {
  const { deps, grpc, server, tracing } = r;
  onShutdown(logger, [
    { name: 'readiness watch', run: async () => r.stopWatching() },
    {
      name: 'Kafka consumer',
      run: async () => {
        await r.consumer?.close();
        await r.kafka?.close();
      },
    },
    { name: 'read cache tail', run: () => deps.invalidations.stop() },
    { name: 'gRPC server', run: () => new Promise<void>((resolve) => grpc.server.tryShutdown(() => resolve())) },
    {
      name: 'http server',
      run: () => new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve()))),
    },
    { name: 'temporal connection', run: () => r.connection.close() },
    { name: 'temporal readiness probe', run: () => r.probe.close() },
    { name: 'neo4j driver', run: () => r.driver.close() },
    { name: 'neo4j readiness driver', run: () => r.probeDriver.close() },
    ...(tracing ? [{ name: 'tracing (flushing spans)', run: () => tracing.shutdown() }] : []),
  ]);
}
