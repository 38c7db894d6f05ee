import { readFileSync } from 'node:fs';
import { SecretMissingError } from '../shared/errors';
import type { Env } from './load';
import type { DatabaseConfig } from './schema';

/**
 * The database password, from the environment variable or file the config names. The
 * value itself is never logged or put in an error message; only where it was looked for.
 */
export function databasePassword(db: DatabaseConfig, env: Env): string | undefined {
  if (db.password_env !== undefined) {
    const value = env[db.password_env];
    if (value === undefined) {
      throw new SecretMissingError(
        `database "${db.name}": environment variable ${db.password_env} (password_env) is not set`,
        { database: db.name },
      );
    }
    return value;
  }
  if (db.password_file !== undefined) {
    try {
      return readFileSync(db.password_file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new SecretMissingError(
        `database "${db.name}": cannot read password_file ${db.password_file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        { database: db.name },
      );
    }
  }
  return undefined;
}
