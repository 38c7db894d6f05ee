import { S3ServiceException } from '@aws-sdk/client-s3';
import { cancellationSignal } from '@temporalio/activity';
import { DatabaseError } from 'pg';
import type { ArchiveMetrics } from '../src/metrics';
import { ArchiverError, DatabaseRefusedError, StoreRefusedError } from '../src/shared/errors';
import { heartbeating } from './heartbeat';

/**
 * SQLSTATE classes that no retry can fix: the input or the environment must change first.
 * Everything else (connection exceptions 08, serialization and deadlock 40, resources 53,
 * lock_timeout 55, statement_timeout and shutdowns 57, I/O 58, a read-only server after a
 * failover 25, internal errors XX) is a fault that passes, and is retried.
 */
const PERMANENT_SQLSTATE_CLASSES: Readonly<Record<string, string>> = {
  '0A': 'feature not supported',
  '22': 'data exception',
  '28': 'invalid authorization',
  '2B': 'dependent privilege descriptors still exist',
  '3D': 'invalid catalog name (no such database)',
  '3F': 'invalid schema name',
  '42': 'syntax error or access rule violation',
};

/** S3 error codes that no retry can fix; any other (5xx, SlowDown, a reset) is retried. */
const PERMANENT_S3_CODES = new Set([
  'AccessDenied',
  'AllAccessDisabled',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'NoSuchBucket',
  'InvalidBucketName',
  'AuthorizationHeaderMalformed',
  'InvalidObjectState',
  // 501: a feature the request needs is off (e.g. server-side encryption without a KMS).
  'NotImplemented',
]);

/**
 * The error an activity should throw for `err`: the archiver's own errors as they are (their
 * class says whether they are retried), refusals of the database or the store that no retry
 * can fix as non-retryable errors naming the cause, and everything else unchanged, to be
 * retried.
 */
export function classifyError(err: unknown): unknown {
  if (err instanceof ArchiverError) return err;
  if (err instanceof DatabaseError && typeof err.code === 'string') {
    const kind = PERMANENT_SQLSTATE_CLASSES[err.code.slice(0, 2)];
    if (kind) {
      return new DatabaseRefusedError(
        `PostgreSQL refused: ${err.message} (SQLSTATE ${err.code}, ${kind})`,
        { sqlstate: err.code },
        { cause: err },
      );
    }
  }
  if (err instanceof S3ServiceException) {
    const status = err.$metadata.httpStatusCode;
    if (PERMANENT_S3_CODES.has(err.name) || status === 403) {
      return new StoreRefusedError(
        `the store refused: ${err.name}${err.message && err.message !== err.name ? `: ${err.message}` : ''} (HTTP ${status ?? '?'})`,
        { code: err.name },
        { cause: err },
      );
    }
  }
  return err;
}

type AsyncFunction = (...args: never[]) => Promise<unknown>;

/**
 * Every activity of the set as the worker registers it: heartbeating on a timer (see
 * heartbeating; `ownHeartbeat` names the ones whose heartbeat means something of their own,
 * like the lock's, which beats only while its session holds the lock) and throwing
 * classified errors (see classifyError), each failed attempt counted in `metrics`.
 */
export function wireActivities<T extends Record<string, AsyncFunction>>(
  activities: T,
  ownHeartbeat: ReadonlySet<string>,
  metrics?: ArchiveMetrics,
): T {
  const wired: Record<string, AsyncFunction> = {};
  for (const [name, fn] of Object.entries(activities)) {
    const run = ownHeartbeat.has(name)
      ? (args: never[]) => fn(...args)
      : (args: never[]) => heartbeating(() => fn(...args));
    wired[name] = async (...args: never[]) => {
      try {
        return await run(args);
      } catch (err) {
        const classified = classifyError(err);
        // A cancelled attempt (the run let go of it) is not a failure.
        if (metrics && !cancellationSignal().aborted) metrics.failed(name, classified, args[0]);
        throw classified;
      }
    };
  }
  return wired as T;
}
