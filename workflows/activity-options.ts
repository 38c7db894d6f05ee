import type { ActivityOptions } from '@temporalio/workflow';
import { NON_RETRYABLE_ERROR_TYPES } from '../src/shared/errors';

/**
 * Activity options, declared once. Every activity has a start-to-close timeout and retries
 * with back-off, except for the error types that no retry can fix.
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
