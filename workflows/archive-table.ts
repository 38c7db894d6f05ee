import {
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  condition,
  ContinueAsNew,
  continueAsNew,
  isCancellation,
  proxyActivities,
  setHandler,
  sleep,
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
  type ExportedBatch,
  type LockHolder,
} from '../src/shared/archive-types';
import { ArchiveDatabase, ArchiveTable as ArchiveTableKey } from '../src/shared/search-attributes';
import { resolveTableRef, type ResolvedTableRef } from '../src/shared/table-ref';
import { DELETE, LOCK, LOCK_HEARTBEAT_MS, SHORT_IO, STREAMING } from './activity-options';
import { lockGrantedSignal, progressQuery } from './messages';

const { planTable, snapshotSchema, advanceWatermark, releaseTableLock } =
  proxyActivities<Activities>(SHORT_IO);
const { exportBatch, verifyBatch, writeDeletionManifest, estimateArchive } =
  proxyActivities<Activities>(STREAMING);
const { deleteBatch } = proxyActivities<Activities>(DELETE);
const { holdTableLock } = proxyActivities<Activities>(LOCK);

/** Continue as new well before Temporal's history warnings (10,240 events). */
const HISTORY_EVENTS_PER_RUN = 4_000;

type LockState =
  | { state: 'none' }
  | { state: 'waiting' }
  | { state: 'held'; holder: LockHolder }
  | { state: 'busy'; heldBy: string }
  | { state: 'lost'; reason: string };

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
  upsertSearchAttributes([
    { key: ArchiveDatabase, value: ref.database },
    { key: ArchiveTableKey, value: `${ref.schema}.${ref.table}` },
  ]);
  const plan = await planTable(ref);
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
      // A batch, once begun, runs to its end even if the run is cancelled meanwhile.
      const done = await CancellationScope.nonCancellable(() =>
        archiveBatch(ref, state, lock, progress),
      );
      if (done) break;
      if (plan.pauseBetweenBatchesMs > 0) {
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

/** One batch, start to end. Returns true when no eligible row is left. */
async function archiveBatch(
  ref: ResolvedTableRef,
  state: ArchiveTableState,
  lock: TableLock,
  progress: ArchiveProgress,
): Promise<boolean> {
  const exported = await exportBatch({
    table: ref,
    run: state.run,
    batch: state.nextBatch,
    cutoff: state.cutoff,
    cursor: state.cursor,
    schemaHash: state.schemaHash,
  });
  if (exported.kind === 'done') return true;
  progress.currentDay = exported.day;
  const batch: ExportedBatch = exported;
  await verifyBatch({ table: ref, object: batch.object });
  await writeDeletionManifest({ table: ref, object: batch.object });
  const holder = await lock.holder();
  const deleted = await deleteBatch({ table: ref, object: batch.object, lock: holder });
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
  return false;
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
            : { state: 'lost', reason: err instanceof Error ? err.message : String(err) };
        },
      );
    await condition(() => this.lock.state !== 'waiting');
    const settled = this.lock as LockState;
    if (settled.state === 'lost') {
      throw ApplicationFailure.nonRetryable(
        `could not take the table lock: ${settled.reason}`,
        'LockLostError',
      );
    }
    return settled;
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
