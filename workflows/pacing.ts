import { log, patched, proxyActivities, setCurrentDetails, sleep } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ArchiveProgress } from '../src/shared/archive-types';
import { archiveCurrentDetails } from '../src/shared/run-metadata';
import type { ResolvedTableRef } from '../src/shared/table-ref';
import {
  afterBatch,
  decideThrottle,
  nextConsecutivePauses,
  onlyPacing,
  restsAfterBatches,
  steerImpact,
  type BatchTiming,
  type ThrottleReading,
  type ThrottleState,
} from '../src/shared/throttle';
import { THROTTLE_CHECK } from './activity-options';
import { countThrottleWait } from './metrics';
import type { Patience } from './patience';

const { readThrottleSignals } = proxyActivities<Activities>(THROTTLE_CHECK);

/**
 * Pauses up to this long are waited inside the next throttle check, not on a timer: that
 * saves a timer and a workflow task per batch, and the dev server fires a 250 ms timer only
 * after about a second. Longer pauses stay durable timers.
 */
export const MAX_PAUSE_IN_ACTIVITY_MS = 10_000;

/**
 * Marks the histories in which a short rest (pacing only, no database signal over its
 * limit) is waited inside the next signal read, as the pause between batches is, instead of
 * on a durable timer; runs that began before it go on with timers when replayed.
 */
const RESTS_IN_SIGNAL_READ = 'rests-in-signal-read';

/** The last batch as pacing needs it: its timing, and when it started (workflow time). */
export type LastBatch = BatchTiming & { startedAt: number };

/**
 * Before a batch: waits `waitMs` (the pause between batches) inside the first signal read,
 * or, with no pause, starts from the `reading` the last delete returned; learns from the
 * last batch (baseline time per row, adapted batch size) and from the reading (the impact
 * controller's rest, src/shared/throttle.ts steerImpact), then waits while a throttle limit
 * is passed, saying why in the progress query, the Web UI's current details, the log and a
 * metric: a rest of up to MAX_PAUSE_IN_ACTIVITY_MS inside the next signal read, anything
 * longer or caused by a database signal on a durable timer. The signals are read again after
 * each wait, so the pause ends when they clear. Returns the new pacing state, and whether
 * the archiver rests after every batch.
 */
export async function pace(
  ref: ResolvedTableRef,
  maxBatchSize: number,
  current: ThrottleState,
  last: LastBatch | null,
  progress: ArchiveProgress,
  before: { waitMs: number; reading: ThrottleReading | null },
  patience: Patience,
): Promise<{ state: ThrottleState; rests: boolean }> {
  let { waitMs } = before;
  let reading = waitMs > 0 ? null : before.reading;
  let state = current;
  // The pause waited in the first read counts as time since the batch, as a timer's did.
  let timing: BatchTiming | null = last && {
    ...last,
    elapsedMs: Date.now() - last.startedAt + waitMs,
  };
  let waited = false;
  let rests: boolean;
  for (;;) {
    const wait = waitMs;
    const { limits, signals } =
      reading ??
      (await patience.run('read the throttle signals', () =>
        readThrottleSignals({ table: ref, ...(wait > 0 && { waitMs: wait }) }),
      ));
    waitMs = 0;
    reading = null;
    const steered = steerImpact(limits, signals, state, timing !== null);
    if (steered.over) log.info('over the impact budget', { why: steered.over });
    state = steered.state;
    rests = restsAfterBatches(limits, state);
    const decision = decideThrottle(limits, signals, timing, state);
    if (timing) state = afterBatch(limits, maxBatchSize, timing, state);
    // Rate ceilings and the slowdown are about the last batch: judged once, not on re-checks.
    timing = null;
    state = { ...state, consecutivePauses: nextConsecutivePauses(decision, state) };
    if (!decision.pause) break;
    const until = new Date(Date.now() + decision.ms).toISOString();
    progress.state = 'throttled';
    progress.throttledBy = decision.by;
    progress.throttleReason = decision.reason;
    progress.throttledUntil = until;
    setCurrentDetails(archiveCurrentDetails(progress));
    log.info('throttled', { by: decision.by, reason: decision.reason, ms: decision.ms });
    countThrottleWait({ ...ref, signal: decision.by[0] ?? 'unknown', ms: decision.ms });
    waited = true;
    if (
      onlyPacing(decision) &&
      decision.ms <= MAX_PAUSE_IN_ACTIVITY_MS &&
      patched(RESTS_IN_SIGNAL_READ)
    ) {
      waitMs = decision.ms;
      continue;
    }
    await sleep(decision.ms, { summary: `throttled: ${decision.by.join(', ')}` });
  }
  if (waited) {
    delete progress.throttledBy;
    delete progress.throttleReason;
    delete progress.throttledUntil;
    setCurrentDetails(archiveCurrentDetails(progress));
  }
  return { state, rests };
}
