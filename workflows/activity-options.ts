import { ActivityCancellationType, type ActivityOptions } from '@temporalio/workflow';
import { NON_RETRYABLE_ERROR_TYPES } from '../src/shared/errors';

/**
 * Activity options, declared once. Every activity has a start-to-close timeout and retries
 * with back-off, except for the error types that no retry can fix; everything that streams
 * heartbeats, so a dead worker's activity is retried elsewhere within seconds.
 */
const retry: ActivityOptions['retry'] = {
  initialInterval: '1 second',
  backoffCoefficient: 2,
  maximumInterval: '1 minute',
  maximumAttempts: 10,
  nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES],
};

/** Catalog reads and small object writes. */
export const SHORT_IO: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  retry,
};

/**
 * Reading the throttle signals: a few catalog queries bounded by statement_timeout. Retried
 * like any read; a database that cannot answer them cannot take a batch either.
 */
export const THROTTLE_CHECK: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry,
};

/** Export, read-back verification, deletion manifests: stream a batch, heartbeat as they go. */
export const STREAMING: ActivityOptions = {
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '30 seconds',
  retry,
};

/**
 * Validation of one table's archive: reads back every object of the range, so it may run for
 * hours on a large archive; the heartbeat (one per object, and every 10,000 rows) is what
 * notices a dead worker.
 */
export const VALIDATE: ActivityOptions = {
  startToCloseTimeout: '12 hours',
  heartbeatTimeout: '1 minute',
  retry,
};

/** One delete transaction; bounded by the session's statement_timeout for each statement. */
export const DELETE: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  // The delete heartbeats while its statements run, so a dead worker's delete is retried in
  // seconds rather than after the whole start-to-close timeout.
  heartbeatTimeout: '10 seconds',
  retry,
};

/**
 * The table lock is held by an activity that runs for the whole run. It is not retried: the
 * workflow takes the lock again itself, and a lost lock must be noticed, not papered over.
 */
export const LOCK_HEARTBEAT_MS = 3_000;
export const LOCK: ActivityOptions = {
  startToCloseTimeout: '7 days',
  heartbeatTimeout: '15 seconds',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { maximumAttempts: 1 },
};
