/**
 * What every area of the configuration shares: the repository root, the process's mode and log
 * level (NODE_ENV, LOG_LEVEL), a port, and the error a wrong configuration stops the process with.
 * config/env.ts composes the areas (config/env*.ts) into one schema.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

/**
 * The repository root: the nearest folder up from this module that holds package.json (this file
 * lives in `<root>/config`; compiled into an entry point of the image, in `<root>/<dir>/…`).
 */
export const repoRoot = rootAbove(path.dirname(fileURLToPath(import.meta.url)));

function rootAbove(dir: string): string {
  for (let d = dir; ; d = path.dirname(d)) {
    if (existsSync(path.join(d, 'package.json'))) return d;
    if (path.dirname(d) === d) return path.resolve(dir, '..');
  }
}

export const port = z.coerce.number().int().min(1).max(65535);

/** What one area's variables parse to: its part of config/env.ts `Env`. */
export type EnvOf<S extends z.ZodRawShape> = z.infer<z.ZodObject<S>>;

/** A wrong value found across variables: the variable it is reported under, and what is wrong. */
export interface ConfigIssue {
  path: string[];
  message: string;
}

export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`Invalid configuration:\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** The process's mode and how much it logs. */
export const coreShape = {
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
};

export type CoreEnv = EnvOf<typeof coreShape>;
