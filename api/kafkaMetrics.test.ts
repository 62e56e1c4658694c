import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { kafkaConsumerMetrics, type KafkaConsumerSource } from './kafkaMetrics';

/** The samples of `name` on the registry's text (its HELP and TYPE lines left out). */
async function samples(registry: Registry, name: string): Promise<string[]> {
  return (await registry.metrics()).split('\n').filter((line) => line.startsWith(`${name} `));
}

describe("the agents' consumer's metrics", () => {
  it('have no sample while no consumer runs (Kafka off), so no alert takes that for a consumer down', async () => {
    const registry = new Registry();
    const source: KafkaConsumerSource = {};
    kafkaConsumerMetrics(registry, source);
    expect(await samples(registry, 'persona_kafka_consumer_up')).toEqual([]);
    expect(await samples(registry, 'persona_kafka_consumer_restarts_total')).toEqual([]);
  });

  it("read the consumer's view at each scrape once it runs", async () => {
    const registry = new Registry();
    const view = { consuming: false, restarts: 2 };
    kafkaConsumerMetrics(registry, { view: () => view });
    expect(await samples(registry, 'persona_kafka_consumer_up')).toEqual(['persona_kafka_consumer_up 0']);
    expect(await samples(registry, 'persona_kafka_consumer_restarts_total')).toEqual([
      'persona_kafka_consumer_restarts_total 2',
    ]);
    view.consuming = true;
    expect(await samples(registry, 'persona_kafka_consumer_up')).toEqual(['persona_kafka_consumer_up 1']);
  });
});
