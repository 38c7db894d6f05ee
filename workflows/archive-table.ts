import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  condition,
  ContinueAsNew,
  continueAsNew,
  isCancellation,
  log,
  metricMeter,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  TimeoutFailure,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  emptyTotals,
  type ArchiveProgress,
  type ArchiveTableInput,
  type ArchiveTableOutcome,
  type ArchiveTableState,
  type DeleteBatchResult,
  type ExportedBatch,
  type LockHolder,
} from '../src/shared/archive-types';
import { ArchiveDatabase, ArchiveTable as ArchiveTableKey } from '../src/shared/search-attributes';
import { resolveTableRef, type ResolvedTableRef } from '../src/shared/table-ref';
import {
  afterBatch,
  decideThrottle,
  initialThrottleState,
  nextConsecutivePauses,
  type BatchTiming,
  type ThrottleState,
} from '../src/shared/throttle';
import {
  DELETE,
  LOCK,
  LOCK_HEARTBEAT_MS,
  SHORT_IO,
  STREAMING,
  THROTTLE_CHECK,
} from './activity-options';
import { lockGrantedSignal, progressQuery } from './messages';

const { planTable, snapshotSchema, advanceWatermark, releaseTableLock } =
  proxyActivities<Activities>(SHORT_IO);
const { exportBatch, verifyBatch, writeDeletionManifest, estimateArchive } =
  proxyActivities<Activities>(STREAMING);
const { deleteBatch } = proxyActivities<Activities>(DELETE);
const { holdTableLock } = proxyActivities<Activities>(LOCK);
const { readThrottleSignals } = proxyActivities<Activities>(THROTTLE_CHECK);

// Emitted through the SDK's metrics (worker.sdk_metrics_address); not emitted on replay.
const throttlePauses = metricMeter.createCounter(
  'audit_archiver_throttle_pauses',
  'pauses',
  'Waits before a batch because a throttle limit was passed, by the first signal named.',
);
const throttlePausedMs = metricMeter.createCounter(
  'audit_archiver_throttle_paused_ms',
  'ms',
  'Time spent waiting on throttle limits.',
);

/**
 * Pauses up to this long are waited inside the next throttle check, not on a timer: that
 * saves a timer and a workflow task per batch, and the dev server fires a 250 ms timer only
 * after about a second. Longer pauses stay durable timers.
 */
const MAX_PAUSE_IN_ACTIVITY_MS = 10_000;

/** Continue as new well before Temporal's history warnings (10,240 events). */
const HISTORY_EVENTS_PER_RUN = 4_000;

type LockState =
  | { state: 'none' }
  | { state: 'waiting' }
  | { state: 'held'; holder: LockHolder }
  | { state: 'busy'; heldBy: string }
  | { state: 'lost'; reason: string; timedOut: boolean };

/**
 * Archives one configured table: under the table's lock, exports each batch of rows older
 * than the cutoff to the bucket, reads it back and verifies it, writes the deletion manifest,
 * deletes exactly the archived row versions, and moves the watermark; then the next batch,
 * until no eligible row is left. Every step is an idempotent activity, so a crash anywhere
 * only delays the run. Cancelling stops after the current batch, with nothing half-done.
 */
export async function ArchiveTable(input: ArchiveTableInput): Promise<ArchiveTableOutcome> {
  const ref = resolveTableRef(input);
  const label = `${ref.database} ${ref.schema}.${ref.table}`;
  // Runs started before throttling existed replay without its activity calls and timers.
  const throttling = patched('throttle-v1');
  // Runs started before 'lean-batch-v1' verify and write the deletion manifest in two
  // read-backs, and pause on a timer after every batch.
  const lean = throttling && patched('lean-batch-v1');
  upsertSearchAttributes([
    { key: ArchiveDatabase, value: ref.database },
    { key: ArchiveTableKey, value: `${ref.schema}.${ref.table}` },
  ]);
  const plan = await planTable(ref);
  // The first batch of a run (also after continue-as-new) starts without a pause.
  const pauseInCheck = lean && plan.pauseBetweenBatchesMs <= MAX_PAUSE_IN_ACTIVITY_MS;
  const state: ArchiveTableState = input.state ?? newRunState(plan.retentionDays);
  const progress: ArchiveProgress = {
    table: label,
    state: 'starting',
    cutoff: state.cutoff,
    currentDay: state.cursor.day,
    lastError: null,
    totals: state.totals,
  };
  setHandler(progressQuery, () => progress);

  if (input.dryRun) {
    progress.state = 'dry run';
    const estimate = await estimateArchive({ table: ref, cutoff: state.cutoff });
    progress.state = 'done';
    return { outcome: 'dry-run', cutoff: state.cutoff, estimate };
  }

  const lock = new TableLock(ref);
  progress.state = 'waiting for lock';
  const first = await lock.acquire();
  if (first.state === 'busy') {
    progress.state = 'done';
    return { outcome: 'locked', heldBy: first.heldBy };
  }

  let schemaChanged = false;
  try {
    if (!input.state) {
      const snapshot = await snapshotSchema(ref);
      state.schemaHash = snapshot.schemaHash;
      schemaChanged = snapshot.previousSchemaHash !== null;
    }
    progress.state = 'archiving';
    let lastBatch: (BatchTiming & { startedAt: number }) | null = null;
    for (;;) {
      if (CancellationScope.current().consideredCancelled) {
        throw new CancelledFailure(
          `cancelled after batch ${state.nextBatch - 1}; nothing is half-done`,
        );
      }
      if (
        workflowInfo().historyLength > HISTORY_EVENTS_PER_RUN ||
        workflowInfo().continueAsNewSuggested
      ) {
        await lock.release();
        return await continueAsNew<typeof ArchiveTable>({ ...input, state });
      }
      if (throttling) {
        const waitMs = pauseInCheck && lastBatch ? plan.pauseBetweenBatchesMs : 0;
        if (waitMs > 0) progress.state = 'pausing';
        const pace = await throttle(ref, plan.batchSize, state, lastBatch, progress, waitMs);
        progress.state = 'archiving';
        progress.batchSize = pace.batchSize;
      }
      // A batch, once begun, runs to its end even if the run is cancelled meanwhile.
      const batchStarted = Date.now();
      const batch = await CancellationScope.nonCancellable(() =>
        archiveBatch(ref, state, lock, progress, lean),
      );
      if (batch === 'done') break;
      // The export saw no eligible row after this batch: end without a rest and without an
      // export that would find nothing (results recorded before `more` existed lack it).
      if (batch.more === false) break;
      if (throttling) {
        lastBatch = {
          rows: batch.rows,
          bytes: batch.bytes,
          workMs: Date.now() - batchStarted,
          elapsedMs: 0,
          full: batch.rows >= (state.throttle?.batchSize ?? plan.batchSize),
          startedAt: batchStarted,
        };
      }
      if (plan.pauseBetweenBatchesMs > 0 && !pauseInCheck) {
        progress.state = 'pausing';
        await sleep(plan.pauseBetweenBatchesMs);
        progress.state = 'archiving';
      }
    }
  } catch (err) {
    if (!isCancellation(err) && !(err instanceof ContinueAsNew))
      progress.lastError = err instanceof Error ? err.message : String(err);
    throw err;
  } finally {
    await CancellationScope.nonCancellable(() => lock.release());
    progress.state = 'done';
  }
  return {
    outcome: 'archived',
    run: state.run,
    cutoff: state.cutoff,
    schemaChanged,
    ...state.totals,
  };
}

function newRunState(retentionDays: number): ArchiveTableState {
  // Workflow time is deterministic: the same cutoff on every replay.
  const now = Date.now();
  const startedAt = new Date(now).toISOString();
  const run = `${startedAt.replace(/[-:]/g, '').slice(0, 15)}Z-${workflowInfo().firstExecutionRunId.slice(0, 8)}`;
  return {
    run,
    cutoff: new Date(now - retentionDays * 86_400_000).toISOString(),
    schemaHash: '',
    cursor: { day: null, afterKey: null },
    nextBatch: 1,
    totals: emptyTotals(),
    startedAt,
  };
}

/**
 * Before a batch: waits `waitMs` (the pause between batches) inside the first signal read,
 * learns from the last batch (baseline time per row, adapted batch size), then waits on
 * durable timers while a throttle limit is passed, saying why in the progress query, the Web
 * UI's current details, the log and a metric. The signals are read again after each wait,
 * so the pause ends when they clear.
 */
async function throttle(
  ref: ResolvedTableRef,
  maxBatchSize: number,
  state: ArchiveTableState,
  last: (BatchTiming & { startedAt: number }) | null,
  progress: ArchiveProgress,
  waitMs: number,
): Promise<ThrottleState> {
  let pace = state.throttle ?? initialThrottleState(maxBatchSize);
  // The pause waited in the first read counts as time since the batch, as a timer's did.
  let timing: BatchTiming | null = last && {
    ...last,
    elapsedMs: Date.now() - last.startedAt + waitMs,
  };
  let waited = false;
  for (;;) {
    const { limits, signals } = await readThrottleSignals({
      table: ref,
      ...(waitMs > 0 && { waitMs }),
    });
    waitMs = 0;
    const decision = decideThrottle(limits, signals, timing, pace);
    if (timing) pace = afterBatch(limits, maxBatchSize, timing, pace);
    // Rate ceilings and the slowdown are about the last batch: judged once, not on re-checks.
    timing = null;
    pace = { ...pace, consecutivePauses: nextConsecutivePauses(decision, pace) };
    state.throttle = pace;
    if (!decision.pause) break;
    const until = new Date(Date.now() + decision.ms).toISOString();
    progress.state = 'throttled';
    progress.throttledBy = decision.by;
    progress.throttleReason = decision.reason;
    progress.throttledUntil = until;
    setCurrentDetails(`Throttled until ${until}: ${decision.reason}`);
    log.info('throttled', { by: decision.by, reason: decision.reason, ms: decision.ms });
    const tags = { database: ref.database, signal: decision.by[0] ?? 'unknown' };
    throttlePauses.add(1, tags);
    throttlePausedMs.add(decision.ms, tags);
    waited = true;
    await sleep(decision.ms, { summary: `throttled: ${decision.by.join(', ')}` });
  }
  if (waited) {
    delete progress.throttledBy;
    delete progress.throttleReason;
    delete progress.throttledUntil;
    setCurrentDetails('');
  }
  return pace;
}

/** One batch, start to end: its rows and bytes, or 'done' when no eligible row is left. */
async function archiveBatch(
  ref: ResolvedTableRef,
  state: ArchiveTableState,
  lock: TableLock,
  progress: ArchiveProgress,
  lean: boolean,
): Promise<'done' | { rows: number; bytes: number; more: boolean | undefined }> {
  const exported = await exportBatch({
    table: ref,
    run: state.run,
    batch: state.nextBatch,
    cutoff: state.cutoff,
    cursor: state.cursor,
    schemaHash: state.schemaHash,
    ...(state.throttle && { batchSize: state.throttle.batchSize }),
  });
  if (exported.kind === 'done') return 'done';
  progress.currentDay = exported.day;
  const batch: ExportedBatch = exported;
  if (lean) {
    await verifyBatch({ table: ref, object: batch.object, writeDeletionManifest: true });
  } else {
    await verifyBatch({ table: ref, object: batch.object });
    await writeDeletionManifest({ table: ref, object: batch.object });
  }
  const deleted = await deleteUnderLock(ref, batch.object, lock);
  await advanceWatermark({
    table: ref,
    run: state.run,
    cutoff: state.cutoff,
    maxTimestamp: batch.maxTimestamp,
    maxTimestampMicros: batch.maxTimestampMicros,
  });
  const t = state.totals;
  t.batches++;
  t.objects++;
  t.rowsArchived += batch.rowCount;
  t.rowsDeleted += deleted.deleted;
  t.rowsChanged += deleted.changed;
  t.bytes += batch.bytes;
  state.cursor = batch.next;
  state.nextBatch++;
  return { rows: batch.rowCount, bytes: batch.bytes, more: batch.more };
}

/**
 * Deletes the batch while this run holds the table's lock. A worker that died during the
 * delete took the lock's session with it, so the retried delete finds the lock gone
 * (LockLostError, nothing deleted): take the lock again and delete again. The delete is
 * idempotent, and taking the lock fails cleanly if another run holds it meanwhile.
 */
async function deleteUnderLock(
  ref: ResolvedTableRef,
  object: string,
  lock: TableLock,
): Promise<DeleteBatchResult> {
  for (let attempt = 1; ; attempt++) {
    const holder = await lock.holder();
    try {
      return await deleteBatch({ table: ref, object, lock: holder });
    } catch (err) {
      const lockLost =
        err instanceof ActivityFailure &&
        err.cause instanceof ApplicationFailure &&
        err.cause.type === 'LockLostError';
      if (!lockLost || attempt >= 3) throw err;
      lock.forget();
    }
  }
}

/**
 * The table's advisory lock, held by a long-running activity that signals once it holds it.
 * If that activity dies (its worker crashed), the lock died with its session: the next
 * delete takes it again first, and the delete itself checks in the database that this run's
 * session holds it.
 */
class TableLock {
  private lock: LockState = { state: 'none' };
  private scope: CancellationScope | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly ref: ResolvedTableRef) {
    setHandler(lockGrantedSignal, (holder) => {
      if (this.lock.state === 'waiting') this.lock = { state: 'held', holder };
    });
  }

  async acquire(): Promise<LockState> {
    for (let attempt = 1; ; attempt++) {
      const settled = await this.tryAcquire();
      if (settled.state !== 'lost') return settled;
      // Timed out before the lock was granted: the worker running it died, and its session
      // (with any lock it took) died too. Nothing was held, so nothing was lost: try again.
      if (settled.timedOut && attempt < 5) {
        await this.release();
        continue;
      }
      throw ApplicationFailure.nonRetryable(
        `could not take the table lock: ${settled.reason}`,
        'LockLostError',
      );
    }
  }

  /** The database says this run's lock session is gone: the next holder() takes it again. */
  forget(): void {
    if (this.lock.state === 'held')
      this.lock = { state: 'lost', reason: 'the lock session is gone', timedOut: false };
  }

  private async tryAcquire(): Promise<LockState> {
    this.lock = { state: 'waiting' };
    const scope = new CancellationScope();
    this.scope = scope;
    this.running = scope
      .run(() => holdTableLock({ table: this.ref, heartbeatMs: LOCK_HEARTBEAT_MS }))
      .then(
        (result) => {
          this.lock = result.acquired
            ? { state: 'none' }
            : { state: 'busy', heldBy: result.heldBy };
        },
        (err: unknown) => {
          this.lock = isCancellation(err)
            ? { state: 'none' }
            : {
                state: 'lost',
                reason: err instanceof Error ? err.message : String(err),
                timedOut: err instanceof ActivityFailure && err.cause instanceof TimeoutFailure,
              };
        },
      );
    await condition(() => this.lock.state !== 'waiting');
    return this.lock;
  }

  /** The session holding the lock, taking the lock again if it was lost. */
  async holder(): Promise<LockHolder> {
    if (this.lock.state !== 'held') {
      await this.release();
      const again = await this.acquire();
      if (again.state === 'busy') {
        throw ApplicationFailure.nonRetryable(
          `the table lock was lost and is now held by ${again.heldBy}`,
          'LockLostError',
        );
      }
    }
    if (this.lock.state !== 'held')
      throw ApplicationFailure.nonRetryable('table lock not held', 'LockLostError');
    return this.lock.holder;
  }

  async release(): Promise<void> {
    if (this.lock.state === 'held') {
      // Ask the holder session to let go now; cancelling alone waits for a heartbeat.
      await releaseTableLock({ table: this.ref, holder: this.lock.holder }).catch(() => undefined);
    }
    this.scope?.cancel();
    await this.running;
    this.scope = undefined;
    this.running = undefined;
    this.lock = { state: 'none' };
  }
}
