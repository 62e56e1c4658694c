/**
 * Kafka over TLS with SASL, against the stack's broker's secure listener (the one `npm run dev`
 * uses): every kind of client Persona makes (the admin that makes the topics, the worker's
 * idempotent producer, the api's consumer) connects with the connection options of
 * clients/kafka.ts, and the broker refuses what a stranger would try: a wrong password, no
 * password, no TLS; a client that cannot verify the broker's certificate refuses the broker.
 */
import { randomUUID } from 'node:crypto';
import { Admin } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import {
  createKafkaProducer,
  ensureTopics,
  KAFKA_HEADERS,
  kafkaConnection,
  type KafkaConnectionSettings,
} from '../../clients/kafka';
import { loadSettings } from '../../config/env';
import { localKafkaSecureEnv } from '../../stack/install';
import { until } from '../support/wait';
import { readTopic, type Msg } from '../support/kafka';

const stack = loadSettings();
const secure = loadSettings({
  ...process.env,
  ...localKafkaSecureEnv(stack),
});

/** Every message of an error, its causes and the errors it gathers (the client wraps them). */
function messages(err: unknown, seen = new Set<unknown>()): string {
  if (!err || typeof err !== 'object' || seen.has(err)) return '';
  seen.add(err);
  const e = err as { message?: string; cause?: unknown; errors?: unknown[] };
  return [e.message ?? '', messages(e.cause, seen), ...(e.errors ?? []).map((x) => messages(x, seen))].join(' | ');
}

/** Lists the topics with these settings: what the broker answers, or why it would not. */
async function listWith(s: KafkaConnectionSettings): Promise<string[]> {
  const admin = new Admin({ clientId: 'persona-test-secure', ...kafkaConnection(s), timeout: 5_000, retries: 0 });
  try {
    return await admin.listTopics();
  } finally {
    await admin.close().catch(() => undefined);
  }
}

describe('Kafka over TLS with SASL', () => {
  it('makes the topics, produces with the idempotent producer and consumes, all over TLS and SASL', async () => {
    const topic = `test.${randomUUID().slice(0, 8)}.secure`;
    expect(await ensureTopics(secure, [{ name: topic, partitions: 1 }])).toEqual([topic]);
    const producer = createKafkaProducer(secure, 'persona-test-secure-producer');
    const eventId = randomUUID();
    try {
      await producer.send({
        messages: [
          { topic, key: 'customer-1', value: '{"type":"Test"}', headers: { [KAFKA_HEADERS.eventId]: eventId } },
        ],
      });
    } finally {
      await producer.close();
    }
    const got: Msg[] = [];
    const reader = await readTopic(secure, topic, got);
    try {
      await until(async () => got.length > 0);
    } finally {
      await reader.stop();
    }
    expect(got.map((m) => [m.key, m.value, m.headers.get(KAFKA_HEADERS.eventId)])).toEqual([
      ['customer-1', '{"type":"Test"}', eventId],
    ]);
  });

  it('is refused with a wrong password, without SASL, and without TLS; answered with all three', async () => {
    expect(await listWith(secure)).toEqual(expect.any(Array));
    const wrong = await listWith({ ...secure, kafkaSaslPassword: () => 'not-the-password' }).catch((e: unknown) => e);
    expect(messages(wrong)).toMatch(/SASL authentication failed/);
    // The broker closes a connection that skips the SASL handshake, or speaks plaintext to TLS.
    const anonymous = await listWith({ ...secure, KAFKA_SASL_MECHANISM: undefined }).catch((e: unknown) => e);
    expect(messages(anonymous)).toMatch(/Connection closed/);
    const plaintext = await listWith({ ...secure, KAFKA_TLS: 'false', KAFKA_TLS_CA: undefined }).catch(
      (e: unknown) => e,
    );
    expect(messages(plaintext)).toMatch(/Connection closed/);
  });

  it('refuses a broker whose certificate it cannot verify', async () => {
    // The system's CAs do not know the stack's self-signed broker.
    const unverified = await listWith({ ...secure, KAFKA_TLS_CA: undefined }).catch((e: unknown) => e);
    expect(messages(unverified)).toMatch(/self-signed certificate/);
  });

  it('names the variable when a PEM file cannot be read', () => {
    expect(() => kafkaConnection({ ...secure, KAFKA_TLS_CA: '/nonexistent/ca.pem' })).toThrow(
      /KAFKA_TLS_CA: cannot read \/nonexistent\/ca\.pem/,
    );
  });
});
