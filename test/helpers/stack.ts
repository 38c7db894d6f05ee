import { execFile, execFileSync } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

/**
 * Where the services the tests talk to are: the local stack's defaults (temporal/lib.sh),
 * or whatever the environment says. Tests share one server of each kind and isolate by
 * database, key prefix and task queue.
 */
export const PROJECT_DIR = path.resolve(__dirname, '..', '..');
export const PG = {
  host: process.env.PGHOST ?? '127.0.0.1',
  port: Number(process.env.PGPORT ?? 5432),
  user: process.env.PGUSER ?? 'postgres',
};
export const MINIO_ENDPOINT =
  process.env.STACK_MINIO_ENDPOINT ??
  `http://${process.env.STACK_MINIO_HOST ?? '127.0.0.1'}:${process.env.STACK_MINIO_PORT ?? 9000}`;
export const BUCKET = process.env.STACK_BUCKET ?? 'audit-archive';
/** The stack's bucket with versioning and S3 Object Lock on (temporal/stack.sh). */
export const LOCKED_BUCKET = process.env.STACK_LOCKED_BUCKET ?? 'audit-archive-locked';
/** The name of the KMS key the stack's MinIO encrypts with. */
export const KMS_KEY = process.env.STACK_KMS_KEY ?? 'audit-archiver-key';
export const TEMPORAL_ADDRESS =
  process.env.TEMPORAL_ADDRESS ??
  `${process.env.STACK_TEMPORAL_HOST ?? '127.0.0.1'}:${process.env.STACK_TEMPORAL_PORT ?? 7233}`;
export const TEMPORAL_NAMESPACE = process.env.TEMPORAL_NAMESPACE ?? 'default';

let temporalCli: string | undefined;
/** The Temporal CLI binary the stack built (temporal/lib.sh binary_path). */
export function temporalCliPath(): string {
  temporalCli ??= execFileSync('bash', ['-c', 'source temporal/lib.sh && binary_path temporal'], {
    cwd: PROJECT_DIR,
    encoding: 'utf8',
  }).trim();
  return temporalCli;
}

/** Runs the stack's Temporal CLI against the test server: `temporal(...args)` resolves with its output. */
export function temporal(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return promisify(execFile)(temporalCliPath(), [
    ...args,
    '--address',
    TEMPORAL_ADDRESS,
    '--namespace',
    TEMPORAL_NAMESPACE,
  ]);
}
