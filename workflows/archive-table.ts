import {
  CancellationScope,
  CancelledFailure,
  ContinueAsNew,
  continueAsNew,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
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
  type BatchStart,
  type DayRange,
  type DeletedBatch,
  type ExportedBatch,
  type TablePlan,
  type Waiting,
} from '../src/shared/archive-types';
import { archiveCurrentDetails } from '../src/shared/run-metadata';
import { tableSearchAttributes } from '../src/shared/search-attributes';
import { resolveTableRef, type ResolvedTableRef } from '../src/shared/table-ref';
import { initialThrottleState, type ThrottleReading } from '../src/shared/throttle';
import { DELETE, SHORT_IO, STREAMING } from './activity-options';
import { progressQuery } from './messages';
import { MAX_PAUSE_IN_ACTIVITY_MS, pace, type LastBatch } from './pacing';
import { HistoryFull, Patience } from './patience';
import { runFailed, runSucceeded } from './run-end';
import { recordConfigDigest } from './run-metadata';
import { isLockLost, TableLock } from './table-lock';

const { planTable, snapshotSchema, surveyTable, findBatch } = proxyActivities<Activities>(SHORT_IO);
const { exportBatch, verifyBatch, estimateArchive } = proxyActivities<Activities>(STREAMING);
const { deleteBatch } = proxyActivities<Activities>(DELETE);

/** Continue as new well before Temporal's history warnings (10,240 events). */
const HISTORY_EVENTS_PER_RUN = 4_000;
/** While a step waits out a fault, continue as new past this (the step is taken up again). */
const HISTORY_EVENTS_WHILE_WAITING = 8_000;

/**
 * Archives one configured table: under the table's lock, exports each batch of rows older
 * than the cutoff to the bucket, reads it back and verifies it, writes the deletion manifest,
 * deletes exactly the archived row versions, and moves the watermark; then the next batch,
 * until no eligible row is left. Every step is an idempotent activity, so a crash anywhere
 * only delays the run, and a fault of any length (database, store, network) is waited out.
 * Cancelling stops after the current batch, with nothing half-done.
 */
export async function ArchiveTable(input: ArchiveTableInput): Promise<ArchiveTableOutcome> {
  const ref = resolveTableRef(input);
  let outcome: ArchiveTableOutcome;
  try {
    outcome = await archiveTable(input, ref);
  } catch (err) {
    // Continue-as-new ends this run only: the chain goes on and reports its own end.
    if (!(err instanceof ContinueAsNew)) await runFailed(ref, err);
    throw err;
  }
  await runSucceeded(ref, outcome);
  return outcome;
}

async function archiveTable(
  input: ArchiveTableInput,
  ref: ResolvedTableRef,
): Promise<ArchiveTableOutcome> {
  upsertSearchAttributes(tableSearchAttributes(ref));
  const progress: ArchiveProgress = {
    table: `${ref.database} ${ref.schema}.${ref.table}`,
    state: 'starting',
    cutoff: input.state?.cutoff ?? null,
    currentDay: input.state?.cursor.day ?? null,
    lastError: null,
    totals: input.state?.totals ?? emptyTotals(),
  };
  setHandler(progressQuery, () => progress);
  const patience = new Patience(
    (waiting) => reportWaiting(progress, waiting),
    HISTORY_EVENTS_WHILE_WAITING,
  );
  const plan = await patience.run('plan the table', () => planTable(ref));
  recordConfigDigest(plan.configDigest);
  const state: ArchiveTableState = input.state ?? newRunState(plan);
  progress.cutoff = state.cutoff;
  progress.totals = state.totals;
  showProgress(progress);

  if (input.dryRun) {
    progress.state = 'dry run';
    showProgress(progress);
    const estimate = await patience.run('estimate', () =>
      estimateArchive({ table: ref, cutoff: state.cutoff }),
    );
    progress.state = 'done';
    return { outcome: 'dry-run', cutoff: state.cutoff, estimate };
  }

  const lock = new TableLock(ref, workflowInfo().firstExecutionRunId, patience);
  let schemaChanged = false;
  try {
    progress.state = 'waiting for lock';
    showProgress(progress);
    const first = await lock.acquire();
    if (!first.held) {
      progress.state = 'done';
      return { outcome: 'locked', heldBy: first.heldBy };
    }
    if (!state.schemaHash) {
      const snapshot = await patience.run('snapshot the schema', () =>
        snapshotSchema({ ...ref, enforceDrift: true }),
      );
      state.schemaHash = snapshot.schemaHash;
      schemaChanged = snapshot.previousSchemaHash !== null;
    }
    await new Run(ref, plan, state, progress, lock, patience).all();
  } catch (err) {
    if (err instanceof HistoryFull) {
      await lock.release();
      return await continueAsNew<typeof ArchiveTable>({ ...input, state });
    }
    if (!isCancellation(err)) progress.lastError = err instanceof Error ? err.message : String(err);
    throw err;
  } finally {
    await CancellationScope.nonCancellable(() => lock.release());
    progress.state = 'done';
    showProgress(progress);
  }
  return {
    outcome: 'archived',
    run: state.run,
    cutoff: state.cutoff,
    schemaChanged,
    skipped: state.skipped,
    ...state.totals,
  };
}

function newRunState(plan: TablePlan): ArchiveTableState {
  // Workflow time is deterministic: the same cutoff on every replay.
  const now = Date.now();
  const startedAt = new Date(now).toISOString();
  const run = `${startedAt.replace(/[-:]/g, '').slice(0, 15)}Z-${workflowInfo().firstExecutionRunId.slice(0, 8)}`;
  return {
    run,
    cutoff: new Date(now - plan.retentionDays * 86_400_000).toISOString(),
    schemaHash: '',
    cursor: { day: null, afterKey: null },
    nextBatch: 1,
    totals: emptyTotals(),
    startedAt,
    throttle: initialThrottleState(plan.batchSize),
    skipped: { nullKey: 0, outOfRange: 0 },
  };
}

function reportWaiting(progress: ArchiveProgress, waiting: Waiting | undefined): void {
  if (waiting) {
    progress.waiting = waiting;
    progress.state = 'waiting out a fault';
  } else {
    delete progress.waiting;
    progress.state = 'archiving';
  }
  showProgress(progress);
}

/**
 * The Web UI's current details: the progress query's state in words (day, rows so far,
 * throttled by what, resting, waiting out a fault). No command: set as often as it changes.
 */
function showProgress(progress: ArchiveProgress): void {
  setCurrentDetails(archiveCurrentDetails(progress));
}

/** The batches of one run (of a run's continue-as-new chain), under the table's lock. */
class Run {
  /** Days held by restores, read under the current lock generation. */
  private holds: DayRange[] = [];
  private holdsOf = -1;
  /** Whether a step exports the next batch beside the verify and delete of the last. */
  private exportAhead = false;
  /** The holds the batch in flight was exported under (-1: a previous run's). */
  private inFlightHoldsOf = -1;
  private readonly pauseInCheck: boolean;
  /** The load signals the last delete read: the next batch's pacing starts from them. */
  private reading: ThrottleReading | null = null;

  constructor(
    private readonly ref: ResolvedTableRef,
    private readonly plan: TablePlan,
    private readonly state: ArchiveTableState,
    private readonly progress: ArchiveProgress,
    private readonly lock: TableLock,
    private readonly patience: Patience,
  ) {
    // The first batch of a run (also after continue-as-new) starts without a pause.
    this.pauseInCheck = plan.pauseBetweenBatchesMs <= MAX_PAUSE_IN_ACTIVITY_MS;
  }

  /**
   * Every batch until none is left. When batches follow each other without a rest, each
   * step finishes the batch in flight (verify, delete, watermark) while it exports the next
   * one: they are different rows, and the export reads while the delete writes. Otherwise a
   * step exports and finishes one batch. A batch left in flight by the previous run is
   * finished first.
   */
  async all(): Promise<void> {
    const { state, progress } = this;
    await this.survey();
    progress.state = 'archiving';
    let last: LastBatch | null = null;
    for (;;) {
      if (CancellationScope.current().consideredCancelled) {
        await this.finishInFlight();
        throw new CancelledFailure(
          `cancelled after batch ${state.nextBatch - 1}; nothing is half-done`,
        );
      }
      if (
        workflowInfo().historyLength > HISTORY_EVENTS_PER_RUN ||
        workflowInfo().continueAsNewSuggested
      ) {
        throw new HistoryFull('the run');
      }
      const waitMs = this.pauseInCheck && last ? this.plan.pauseBetweenBatchesMs : 0;
      if (waitMs > 0) {
        progress.state = 'pausing';
        showProgress(progress);
      }
      const paced = await pace(
        this.ref,
        this.plan.batchSize,
        state.throttle,
        last,
        progress,
        { waitMs, reading: this.reading },
        this.patience,
      ).catch(async (err: unknown) => {
        // Cancelled while throttled: the batch exported ahead is not left half-done either.
        if (isCancellation(err)) await this.finishInFlight();
        throw err;
      });
      state.throttle = paced.state;
      this.reading = null;
      // An export ahead would wait out the rest after its step, and its rows could change
      // meanwhile: with rests after every batch, a step exports and finishes one batch.
      this.exportAhead = !paced.rests && this.plan.pauseBetweenBatchesMs === 0;
      progress.state = 'archiving';
      progress.batchSize = state.throttle.batchSize;
      showProgress(progress);
      // A step, once begun, runs to its end even if the run is cancelled meanwhile.
      const startedAt = Date.now();
      const { finished, more } = await CancellationScope.nonCancellable(() => this.step());
      if (!more) return;
      if (!finished) continue;
      last = {
        rows: finished.rowCount,
        bytes: finished.bytes,
        workMs: Date.now() - startedAt,
        elapsedMs: 0,
        full: finished.rowCount >= state.throttle.batchSize,
        startedAt,
      };
      if (this.plan.pauseBetweenBatchesMs > 0 && !this.pauseInCheck) {
        progress.state = 'pausing';
        showProgress(progress);
        await sleep(this.plan.pauseBetweenBatchesMs);
        progress.state = 'archiving';
      }
    }
  }

  /**
   * Reads what the run needs under the lock, again each time the lock was taken again: the
   * days restores hold, and the old rows it must leave in the table. A next batch found
   * under earlier holds is searched for again.
   */
  private async survey(): Promise<void> {
    if (this.holdsOf === this.lock.generation) return;
    const survey = await this.patience.run('survey the table', () =>
      surveyTable({ table: this.ref, cutoff: this.state.cutoff }),
    );
    this.holds = survey.holds;
    this.holdsOf = this.lock.generation;
    this.state.skipped = survey.skipped;
    if (survey.skipped.held) this.progress.held = survey.skipped.held;
    delete this.state.start;
  }

  /**
   * One step: the batch in flight finished while the next is exported, or, with none in
   * flight, the next batch exported. `more` is false once no eligible row is left.
   */
  private async step(): Promise<{ finished?: ExportedBatch; more: boolean }> {
    const { state, lock } = this;
    await this.survey();
    const previous = state.inFlight;
    if (!previous) {
      const exported = await this.exportNext();
      if (exported === 'done') return { more: false };
      if (exported === 'empty' || this.exportAhead) return { more: true };
      await this.finishOnly();
      return { finished: exported, more: exported.following !== null };
    }
    const ahead = previous.following;
    // Its following batch was found under the holds read then: only under the same holds is
    // it exported ahead. Otherwise the search starts again once the batch is finished.
    if (!ahead || !this.exportAhead || this.inFlightHoldsOf !== this.holdsOf) {
      await this.finishOnly();
      return { finished: previous, more: ahead !== null };
    }
    const holdsOf = this.holdsOf;
    const n = state.nextBatch + 1;
    // Both run to their end, even when one fails: a delete is never left running unawaited.
    const [finished, next] = await Promise.allSettled([
      this.finish(previous),
      this.exportFrom(n, ahead),
    ]);
    if (finished.status === 'rejected') throw finished.reason;
    if (next.status === 'rejected') throw next.reason;
    const exported = next.value;
    // The delete took the lock again: a restore may have held the exported batch's day
    // meanwhile. Such a batch is left unfinished (its object stays, its rows stay in the
    // table) and its number is not used again.
    await this.survey();
    if (lock.generation !== holdsOf && exported !== 'empty' && this.isHeld(exported.day)) {
      state.nextBatch++;
      delete state.start;
      return { finished: previous, more: true };
    }
    this.exported(exported, ahead, holdsOf);
    return { finished: previous, more: true };
  }

  /** The next batch, found from the cursor and exported; 'done' when none is left. */
  private async exportNext(): Promise<'done' | 'empty' | ExportedBatch> {
    const { state } = this;
    const n = state.nextBatch;
    const start =
      state.start ??
      (await this.patience.run(`find batch ${n}`, () =>
        findBatch({
          table: this.ref,
          cutoff: state.cutoff,
          cursor: state.cursor,
          holds: this.holds,
        }),
      ));
    if (!start) return 'done';
    state.start = start;
    const holdsOf = this.holdsOf;
    const exported = await this.exportFrom(n, start);
    this.exported(exported, start, holdsOf);
    return exported;
  }

  /**
   * Exports batch `n` from its recorded start, which every attempt of its export uses, so
   * all of them write (or find) the same object.
   */
  private exportFrom(n: number, start: BatchStart): Promise<'empty' | ExportedBatch> {
    const { state } = this;
    return this.patience
      .run(`export batch ${n}`, () =>
        exportBatch({
          table: this.ref,
          run: state.run,
          batch: n,
          cutoff: state.cutoff,
          start,
          schemaHash: state.schemaHash,
          holds: this.holds,
          batchSize: state.throttle.batchSize,
        }),
      )
      .then((result) => (result.kind === 'empty' ? 'empty' : result));
  }

  /**
   * Records an export: a batch is in flight from now on; an empty one (its rows were gone
   * before it was stored) moves the search on from its start.
   */
  private exported(exported: 'empty' | ExportedBatch, start: BatchStart, holdsOf: number): void {
    const { state } = this;
    if (exported === 'empty') {
      state.cursor = { day: start.day, afterKey: start.afterKey };
      delete state.start;
      return;
    }
    state.start = start;
    state.inFlight = exported;
    this.inFlightHoldsOf = holdsOf;
  }

  /** Before the run ends cancelled: the batch exported ahead, if any, is deleted whole. */
  private async finishInFlight(): Promise<void> {
    if (this.state.inFlight) await CancellationScope.nonCancellable(() => this.finishOnly());
  }

  /** Finishes the batch in flight, with no export beside it. */
  private async finishOnly(): Promise<void> {
    const stale = this.inFlightHoldsOf !== this.holdsOf;
    await this.finish(this.state.inFlight!);
    // Its following batch was found under other holds: search again.
    if (stale) delete this.state.start;
  }

  private isHeld(day: string): boolean {
    return this.holds.some((h) => h.first <= day && day <= h.last);
  }

  /** Verify, then delete and watermark, of an exported batch; then the cursor moves on. */
  private async finish(batch: ExportedBatch): Promise<void> {
    const { state, progress, patience, ref } = this;
    progress.currentDay = batch.day;
    const n = state.nextBatch;
    await patience.run(`verify batch ${n}`, () =>
      verifyBatch({ table: ref, object: batch.object }),
    );
    const deleted = await this.deleteUnderLock(batch);
    this.reading = deleted.reading;
    const t = state.totals;
    t.batches++;
    t.objects++;
    t.rowsArchived += batch.rowCount;
    t.rowsDeleted += deleted.deleted;
    t.rowsChanged += deleted.changed;
    t.bytes += batch.bytes;
    state.cursor = batch.next;
    if (batch.following) state.start = batch.following;
    else delete state.start;
    state.nextBatch++;
    delete state.inFlight;
    showProgress(progress);
  }

  /**
   * Deletes the batch while this run holds the table's lock. A lock session that died (its
   * worker crashed or froze, its session was ended) makes the delete find the lock gone
   * (LockLostError, nothing deleted): take the lock again and delete again. The delete is
   * idempotent, and taking the lock fails cleanly if another run holds it meanwhile.
   */
  private async deleteUnderLock(batch: ExportedBatch): Promise<DeletedBatch> {
    const { state } = this;
    const watermark = {
      run: state.run,
      cutoff: state.cutoff,
      maxTimestamp: batch.maxTimestamp,
      maxTimestampMicros: batch.maxTimestampMicros,
    };
    for (let attempt = 1; ; attempt++) {
      const holder = await this.lock.holder();
      try {
        return await this.patience.run(`delete batch ${state.nextBatch}`, () =>
          deleteBatch({ table: this.ref, object: batch.object, lock: holder, watermark }),
        );
      } catch (err) {
        if (!isLockLost(err) || attempt >= 5) throw err;
        this.lock.forget();
      }
    }
  }
}
