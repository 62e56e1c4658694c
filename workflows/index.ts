/**
 * Every Persona workflow, re-exported: this file is the worker's workflowsPath. Only
 * deterministic code may be imported from here (ESLint bans Node built-ins and I/O modules).
 *
 * The lifecycle workflows (onboarding, payment recovery, expiry scan, fraud outcome) arrive
 * with their issues; until then the worker polls the `persona` task queue with none registered.
 */
export {};
