import { defineConfig } from 'vitest/config';

/**
 * Three projects, run one after another (unit, workflows, integration):
 *   unit         pure logic, no programs needed;
 *   workflows    workflow tests in the time-skipping test server (one per file, so files may
 *                run in parallel); the stack's binaries must be installed;
 *   integration  the real Neo4j and Temporal dev server, shared by every file: one file at a time,
 *                all in one process.
 */
export default defineConfig({
  test: {
    pool: 'forks',
    // Every event any test writes (here or in a process a test starts) is checked against its
    // type's payload contract (graph/eventSchemas.ts); a broken contract fails the write.
    // Request deadlines are generous here: tests share two cores with Neo4j, Temporal and the
    // JVM, and a slow moment must not look like an outage. The outage tests set their own.
    env: {
      PERSONA_VERIFY_EVENT_PAYLOADS: '1',
      PERSONA_REQUEST_DEADLINE_MS: '10000',
      PERSONA_READ_DEADLINE_MS: '10000',
    },
    testTimeout: 60_000,
    hookTimeout: 180_000,
    teardownTimeout: 120_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          sequence: { groupOrder: 0 },
          // One process per worker for every file, not one per file: pure tests leave nothing
          // behind, and loading the modules once is most of what isolation cost (93 s, 41 s without).
          isolate: false,
          include: [
            '{activities,api,backup,clients,config,deploy,docs,graph,ops,payments,runtime,' +
              'resolution,scripts,simulators,stack,temporal,workers,workflows}/**/*.test.ts',
          ],
        },
      },
      {
        extends: true,
        test: {
          name: 'workflows',
          sequence: { groupOrder: 1 },
          include: ['test/workflows/**/*.test.ts'],
          globalSetup: ['test/setup/installed.ts'],
          // Two files at once, or as many as PERSONA_TEST_WORKFLOW_WORKERS says (npm test runs
          // this project beside the integration tests, on one core).
          maxWorkers: Number(process.env.PERSONA_TEST_WORKFLOW_WORKERS ?? 2),
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          sequence: { groupOrder: 2 },
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/setup/stack.ts'],
          setupFiles: ['test/setup/topics.ts'],
          fileParallelism: false,
          // One process for every file, not one per file: each file closes what it opens (its
          // harness, drivers, private services) and restores what it changes (process.env), and
          // loading the modules once is a fifth of the phase (61 files: 470 s, 375 s without).
          isolate: false,
          // A test's waits for real services allow up to 60 s each on a slow machine (a longer wait
          // is refused by test/support/wait.ts unless its test has a budget of its own).
          testTimeout: 120_000,
        },
      },
    ],
  },
});
