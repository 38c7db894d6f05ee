import { z } from 'zod';

/** A config value naming an environment variable (a secret's), with an example name. */
export function envVarName(example: string) {
  return z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, `must be an environment variable name, e.g. ${example}`);
}
