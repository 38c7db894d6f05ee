import { ActivityCancellationType, type ActivityOptions } from '@temporalio/workflow';
import { NON_RETRYABLE_ERROR_TYPES } from '../src/shared/errors';

/**
 * Activity options, declared once. Every activity has a start-to-close timeout and
 * heartbeats on a timer (activities/wiring.ts), so a dead or frozen worker's activity is
 * retried elsewhere within its heartbeat timeout (seconds), not its start-to-close timeout.
 * Retries: a few quick attempts per round for any error but the types no retry can fix;
 * workflows wait out longer faults between rounds (workflows/patience.ts), so a fault of any
 * length only delays a run.
 */
const retry: ActivityOptions['retry'] = {
  initialInterval: '1 second',
  backoffCoefficient: 2,
  maximumInterval: '10 seconds',
  maximumAttempts: 5,
  nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES],
};

type Duration = NonNullable<ActivityOptions['startToCloseTimeout']>;

const timed = (
  startToCloseTimeout: Duration,
  heartbeatTimeout: Duration,
  retryPolicy = retry,
): ActivityOptions => ({ startToCloseTimeout, heartbeatTimeout, retry: retryPolicy });

/** Catalog reads, small object writes, planning, watermark. */
export const SHORT_IO = timed('2 minutes', '10 seconds');

/**
 * Reading the throttle signals: a few catalog queries bounded by statement_timeout, after an
 * optional pause of at most 10 s.
 */
export const THROTTLE_CHECK = timed('1 minute', '10 seconds');

/** Export, read-back verification, restore planning and objects: stream, heartbeat on a timer. */
export const STREAMING = timed('30 minutes', '20 seconds');

/**
 * Validation of one table's archive: reads back every object of the range, so it may run for
 * hours on a large archive; the heartbeat is what notices a dead worker. A table that cannot
 * be validated after its retries is reported as such, so the other tables still finish.
 */
export const VALIDATE = timed('12 hours', '1 minute', {
  ...retry,
  maximumAttempts: 10,
  maximumInterval: '1 minute',
});

/** One delete transaction; bounded by the session's statement_timeout for each statement. */
export const DELETE = timed('2 minutes', '10 seconds');

/**
 * The table lock is held by an activity that runs for the whole run. It is not retried by
 * Temporal: the workflow takes the lock again itself (workflows/table-lock.ts), and a lost
 * lock must be noticed, not papered over.
 */
export const LOCK_HEARTBEAT_MS = 3_000;
export const LOCK: ActivityOptions = {
  startToCloseTimeout: '7 days',
  heartbeatTimeout: '15 seconds',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { maximumAttempts: 1 },
};

/**
 * Notifications (workflows/notify.ts): a few attempts over about a minute, bounded as a
 * whole, so that a channel that is down delays the run's end by minutes at most; then the
 * run ends as it would have, and the lost message is logged. A receiver's refusal
 * (NotificationRefused: a deleted webhook, a rejected login) is not retried.
 */
export const NOTIFY: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  scheduleToCloseTimeout: '5 minutes',
  heartbeatTimeout: '10 seconds',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    maximumAttempts: 6,
    nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES, 'NotificationRefused'],
  },
};
