// ESLint: type-aware TypeScript rules everywhere, plus the workflow sandbox rules for
// workflows/ (no Node built-ins, no I/O clients, activities only as types).
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

export default tseslint.config(
  { ignores: ['node_modules/', '.stack/', 'coverage/', 'proto/generated/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: {
        projectService: { allowDefaultProject: ['eslint.config.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      // The SDK and driver types are precise enough; loosen the noisiest unsafe-* rules for tests.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    files: ['workflows/**/*.ts', 'test/fixtures/workflows.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            ...nodeBuiltins.map((name) => ({
              name,
              message: 'Workflow code runs in a deterministic sandbox: no Node built-ins.',
            })),
            ...['@temporalio/activity', '@temporalio/client', '@temporalio/worker', 'neo4j-driver', 'pino', 'hono'].map(
              (name) => ({
                name,
                message: 'Workflow code must not do I/O; call an activity instead.',
              }),
            ),
          ],
          patterns: [
            {
              group: ['**/activities', '**/activities/**', '**/graph', '**/graph/**', '**/fixtures/activities'],
              allowTypeImports: true,
              message: 'Import activities as types only (proxyActivities).',
            },
          ],
        },
      ],
    },
  },
  {
    // The console's page scripts run in the browser, as plain scripts (cytoscape is a global there).
    files: ['api/console/static/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      globals: { ...globals.browser, cytoscape: 'readonly' },
      sourceType: 'script',
      parserOptions: { projectService: false },
    },
  },
  {
    files: ['**/*.test.ts', 'test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    // Only test/support/temporal.ts may create Temporal test environments (always from the
    // stack's installed binaries: the SDK's own download cannot work here).
    files: ['**/*.ts'],
    ignores: ['test/support/temporal.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "MemberExpression[object.name='TestWorkflowEnvironment'][property.name=/^create/]",
          message: 'Use createTimeSkippingEnv() from test/support/temporal.ts: it runs the installed test server.',
        },
      ],
    },
  },
);
