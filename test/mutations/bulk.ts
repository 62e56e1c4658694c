/** The bulk ops actions of docs/security.md, their bounds taken out one by one (test/mutations/mutation.ts). */
import type { Mutation } from './mutation';

export const bulkMutations: Mutation[] = [
  {
    id: 'console-expiry-scan-at-most-today',
    threat: 'card-expiry scan on demand (`POST /api/v1/admin/expiry-scan`,',
    removes: 'an expiry scan as of a day after today is no longer refused',
    file: 'api/services/expiry.ts',
    find: 'if (day > today)',
    replace: 'if (false)',
    test: 'test/integration/expiry-api.test.ts',
    title: 'refuses a day after today in the scan’s time zone, or no reason, starting nothing',
  },
  {
    id: 'console-expiry-scan-reason',
    threat: 'card-expiry scan on demand (`POST /api/v1/admin/expiry-scan`,',
    removes: 'an expiry scan no longer needs a reason (REST schema and service)',
    file: 'api/rest/admin.ts',
    find: "reason: freeText(500).regex(/\\S/, 'say why the scan runs now').openapi({",
    replace: "reason: freeText(500).default('').openapi({",
    also: [
      {
        file: 'api/services/expiry.ts',
        find: "if (!reason) throw new InvalidInputError('reason', 'say why the scan runs now');",
        replace: '',
      },
    ],
    test: 'test/integration/expiry-api.test.ts',
    title: 'refuses a day after today in the scan’s time zone, or no reason, starting nothing',
  },
  {
    id: 'console-batch-retry-reason',
    threat: 'batch retry of recoveries waiting for ops (`npm run',
    removes: 'a retry batch no longer needs a reason text',
    file: 'temporal/batchRetry.ts',
    find: "if (r.reasonText.trim() === '') throw new BatchRetryError('a batch needs a reason (--reason-text)');",
    replace: '',
    test: 'temporal/batchRetry.test.ts',
    title: 'says what to do when another batch runs, or the job id is taken; needs a reason',
  },
  {
    id: 'console-restore-reason',
    threat: 'graph restore (`npm run restore -- <archive> --reason',
    removes: 'runRestore no longer refuses a blank reason',
    file: 'backup/run.ts',
    find: 'if (!options.requested.reason.trim())',
    replace: 'if (false)',
    test: 'test/integration/backup-restore.test.ts',
    title: 'refuses an archive whose checksum does not match, and changes nothing',
  },
  {
    id: 'console-settle-recoveries-reason',
    threat: 'settling stranded recoveries (`npm run ops:settle-recoveries',
    removes: 'settling stranded recoveries no longer needs a reason',
    file: 'activities/strandedRecoveries.ts',
    find: 'if (!options.dryRun && !options.requested?.reason.trim())',
    replace: 'if (false)',
    test: 'test/integration/money-edges.test.ts',
    title: 'is settled as stopped when the gateway charged nothing, once the settle window has passed',
  },
];
