/** Reading a Kafka topic in a test, as a consumer outside Persona would. */
import { randomUUID } from 'node:crypto';
import {
  Consumer,
  MessagesStreamFallbackModes,
  MessagesStreamModes,
  stringDeserializers,
  type Message,
} from '@platformatic/kafka';
import { kafkaConnection, type KafkaConnectionSettings } from '../../clients/kafka';

export type Msg = Message<string, string, string, string>;

/** Reads `topic` from its start into `into` (a group of its own, nothing committed), until stopped. */
export async function readTopic(
  s: KafkaConnectionSettings,
  topic: string,
  into: Msg[],
): Promise<{ stop(): Promise<void> }> {
  const consumer = new Consumer({
    clientId: 'persona-test-reader',
    groupId: `reader-${randomUUID()}`,
    ...kafkaConnection(s),
    deserializers: stringDeserializers,
  });
  const stream = await consumer.consume({
    topics: [topic],
    autocommit: false,
    mode: MessagesStreamModes.EARLIEST,
    fallbackMode: MessagesStreamFallbackModes.EARLIEST,
    maxWaitTime: 300,
  });
  stream.on('data', (m: Msg) => into.push(m));
  return {
    async stop() {
      await stream.close();
      await consumer.close();
    },
  };
}
