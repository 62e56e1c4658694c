import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger';

describe('the log’s redaction', () => {
  it('keeps identifiers, places and devices out of every line, however deep', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger('redaction-test', 'info', { destination });
    const secrets = {
      email: 'ada@example.com',
      ip: '198.51.100.7',
      user_agent: 'Mozilla/5.0 (secret UA)',
      street1: '10 Secret Street',
      zip_code: 'SW1A 2AA',
      token: 'tok_secret',
    };
    logger.info({ ...secrets, nested: { device: { ip: '203.0.113.9', last_seen_user_agent: 'Other UA' } } }, 'a line');
    const text = lines.join('');
    for (const value of [...Object.values(secrets), '203.0.113.9', 'Other UA']) expect(text).not.toContain(value);
    expect(text).toContain('[redacted]');
  });
});
