import { ActivityFailure, log, setCurrentDetails, sleep, workflowInfo } from '@temporalio/workflow';
import type { Waiting } from '../src/shared/archive-types';
import { innermostMessage } from '../src/shared/failures';

/** First wait between rounds of retries; it doubles up to MAX_WAIT_MS. */
const FIRST_WAIT_MS = 5_000;
const MAX_WAIT_MS = 5 * 60_000;

/**
 * Thrown by Patience when the history has grown long while waiting out a fault: the run
 * continues as new, carrying its state, and the next run takes up the step again.
 */
export class HistoryFull extends Error {
  constructor(step: string) {
    super(`history grew long while ${step} waited out a fault`);
    this.name = 'HistoryFull';
  }
}

/**
 * Whether an activity failure is a fault that passes (a database restart, a store outage, a
 * network cut, a failover): the activity used up its attempts on retryable errors or timed
 * out. A non-retryable failure, a cancellation or anything not from an activity is not.
 */
export function isTransient(err: unknown): boolean {
  return (
    err instanceof ActivityFailure &&
    (err.retryState === 'MAXIMUM_ATTEMPTS_REACHED' || err.retryState === 'TIMEOUT')
  );
}

/**
 * Waits out transient faults: a step whose activity exhausted its few quick retries on
 * retryable errors is tried again after a durable wait that doubles from 5 seconds up to 5 minutes, for as
 * long as the fault lasts; the wait shows in the progress query, the Web UI's current
 * details and the log. Only failures no retry can fix go on to fail the run, at once.
 */
export class Patience {
  constructor(
    private readonly report: (waiting: Waiting | undefined) => void,
    private readonly maxHistoryEvents: number,
  ) {}

  async run<T>(step: string, call: () => Promise<T>): Promise<T> {
    let waiting: Waiting | undefined;
    for (let round = 1; ; round++) {
      try {
        const result = await call();
        if (waiting) this.report(undefined);
        return result;
      } catch (err) {
        if (!isTransient(err)) throw err;
        const ms = Math.min(FIRST_WAIT_MS * 2 ** (round - 1), MAX_WAIT_MS);
        const now = Date.now();
        waiting = {
          step,
          since: waiting?.since ?? new Date(now).toISOString(),
          rounds: round,
          lastError: innermostMessage(err),
          nextTryAt: new Date(now + ms).toISOString(),
        };
        this.report(waiting);
        log.warn('waiting out a fault', { step, rounds: round, error: waiting.lastError, ms });
        if (workflowInfo().historyLength > this.maxHistoryEvents) throw new HistoryFull(step);
        await sleep(ms, { summary: `${step}: waiting out a fault` });
      }
    }
  }
}

/**
 * Patience for a short workflow of a step or two: a wait shows only in the Web UI's current
 * details, and the history may grow to 8,000 events before the step gives up.
 */
export function patienceInDetails(): Patience {
  return new Patience(
    (waiting) => setCurrentDetails(waiting ? `Waiting out a fault: ${waiting.lastError}` : ''),
    8_000,
  );
}
