#!/usr/bin/env node
/**
 * `docker` for tests without a Docker engine: sends its arguments, the variables Persona's compose
 * file reads and its stdin to the test's stand-in (FAKE_DOCKER_URL, test/support/fakeDocker.ts),
 * and answers with what the stand-in says: stdout, stderr and the exit code. Node runs it as it is
 * (types stripped), so it imports nothing of the repository.
 */
async function main(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('PERSONA_')));
  const res = await fetch(process.env.FAKE_DOCKER_URL as string, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ args: process.argv.slice(2), env, stdin: Buffer.concat(chunks).toString('utf8') }),
  });
  const answer = (await res.json()) as { stdout: string; stderr: string; code: number };
  process.stdout.write(answer.stdout);
  process.stderr.write(answer.stderr);
  process.exitCode = answer.code;
}

void main();
