import { tablePath } from './names';
import type { ResolvedTableRef, TableRef } from './table-ref';
import type { ThrottleReading, ThrottleSignalName, ThrottleState } from './throttle';

/**
 * Where an archive run stands: `afterKey` null means "search for the oldest eligible day on
 * or after `day`" (null: from the beginning); otherwise `day` is the day being archived and
 * the next batch starts after that key. Only this travels between batches and across
 * continue-as-new, never row data.
 */
export interface Cursor {
  day: string | null;
  afterKey: string | null;
}

/** The last day of a hold without an end: later than any row's day. */
export const NO_END = '9999-12-31';

/** An inclusive range of UTC days, YYYY-MM-DD. */
export interface DayRange {
  first: string;
  last: string;
}

/**
 * Where a batch starts, as found before it is exported and recorded in the run's history: a
 * day that held an eligible row after `afterKey`. The batch's object key follows from it, so
 * every attempt of the batch writes (or finds) the same object, whatever rows the table
 * gained or lost meanwhile.
 */
export interface BatchStart {
  day: string;
  afterKey: string | null;
}

export interface FindBatchInput {
  table: ResolvedTableRef;
  cutoff: string;
  cursor: Cursor;
  /** Days held by restores (read under the table lock): the search leaves them alone. */
  holds: DayRange[];
}

export interface ExportBatchInput {
  table: ResolvedTableRef;
  run: string;
  batch: number;
  cutoff: string;
  start: BatchStart;
  schemaHash: string;
  /** The holds the start was found under: the search for the following batch keeps to them. */
  holds: DayRange[];
  /**
   * Rows in this batch when throttling adapts the size (at most the table's batch_size).
   * The object key does not depend on it; a retry passes the same value.
   */
  batchSize?: number;
}

export interface ExportedBatch {
  kind: 'batch';
  object: string;
  day: string;
  rowCount: number;
  bytes: number;
  firstKey: string;
  lastKey: string;
  /** The newest timestamp in the batch, as text and as epoch microseconds. */
  maxTimestamp: string;
  maxTimestampMicros: string;
  /** Where the run stands after this batch. */
  next: Cursor;
  /**
   * Where the following batch starts, found when this one was exported; null when no
   * eligible row was left, so that the run ends after this batch without resting and
   * exporting once more to find nothing. Rows backdated later are left to the next run.
   */
  following: BatchStart | null;
}

/**
 * `empty`: the rows the start found were gone (deleted by the application) before any attempt
 * stored the batch; nothing was written, and the run searches again from there.
 */
export type ExportBatchResult = ExportedBatch | { kind: 'empty' };

export interface BatchObjectInput {
  table: ResolvedTableRef;
  object: string;
}

export type VerifyBatchInput = BatchObjectInput;

export interface VerifyBatchResult {
  rowCount: number;
  sha256: string;
}

/**
 * Identifies the session that holds a table's lock (the delete checks it still does), and
 * the token that alone can tell it to let go.
 */
export interface LockHolder {
  pid: number;
  backendStart: string;
  token: string;
}

export interface DeleteBatchInput extends BatchObjectInput {
  lock: LockHolder;
  /** Where the watermark moves once the batch is deleted. */
  watermark: BatchWatermark;
}

export interface DeleteBatchResult {
  listed: number;
  deleted: number;
  changed: number;
  alreadyGone: number;
  /** The legal hold that kept every row of the batch in the table (a hold placed mid-run). */
  heldBy?: string;
}

/** What deleteBatch returns: the delete's counts, and the load signals read after it. */
export interface DeletedBatch extends DeleteBatchResult {
  /** The next batch's pacing starts from these, with no reading of its own. */
  reading: ThrottleReading;
}

export interface HoldTableLockInput {
  table: ResolvedTableRef;
  /** How often the held lock's connection is checked and the activity heartbeats. */
  heartbeatMs: number;
  /**
   * Who asks, stable for the whole run (its first run id): a lock session left by an
   * abandoned attempt of the same run is recognised by it and ended, not waited for.
   */
  owner: string;
}

export type HoldTableLockResult =
  { acquired: false; heldBy: string } | { acquired: true; released: true };

/** A deleted batch as the table's watermark records it. */
export interface BatchWatermark {
  run: string;
  cutoff: string;
  maxTimestamp: string;
  maxTimestampMicros: string;
}

export interface EstimateInput {
  table: ResolvedTableRef;
  cutoff: string;
}

export interface DayEstimate {
  day: string;
  rows: number;
}

export interface ArchiveEstimate {
  rows: number;
  firstTimestamp: string | null;
  lastTimestamp: string | null;
  days: DayEstimate[];
  estimatedBytes: number;
}

/** Settings the worker resolves from its config; the workflow needs them to pace itself. */
export interface TablePlan {
  table: ResolvedTableRef;
  retentionDays: number;
  batchSize: number;
  pauseBetweenBatchesMs: number;
  /** The worker's config digest (src/config/digest.ts); absent in runs recorded before it. */
  configDigest?: string;
}

/** Input of ArchiveTable. Names only: the worker's config holds every setting. */
export interface ArchiveTableInput extends TableRef {
  dryRun?: boolean;
  /** Fixed at the first run and carried across continue-as-new; do not set by hand. */
  state?: ArchiveTableState;
}

export interface ArchiveTableState {
  run: string;
  cutoff: string;
  schemaHash: string;
  cursor: Cursor;
  nextBatch: number;
  totals: ArchiveTotals;
  startedAt: string;
  /** Throttling's learned baseline and adapted batch size. */
  throttle: ThrottleState;
  /** Where the next batch starts, when found under the run's current holds. */
  start?: BatchStart;
  /**
   * A batch exported but not yet verified, deleted and recorded in the watermark, when the
   * run continued as new while waiting out a fault: the next run finishes it first.
   */
  inFlight?: ExportedBatch;
  /** Rows past the cutoff the run leaves in the table, and why. */
  skipped: SkippedRows;
}

/** Rows older than the cutoff that the archive cannot take (they stay in the table). */
export interface SkippedRows {
  /** The archive key is NULL (a unique key that allows NULL): no deletion manifest can name them. */
  nullKey: number;
  /** Dated -infinity or before year 1 (BC): no day partition holds them. */
  outOfRange: number;
  /** Under a legal hold: kept in the table, whatever their age. */
  held?: HeldRows[];
}

/** A legal hold in force on a table, and the old rows it keeps there. */
export interface HeldRows {
  /** `config` for the config's legal_hold, else the id of the hold in the bucket. */
  hold: string;
  reason: string;
  days: DayRange;
  /** Rows older than the cutoff in those days. */
  rows: number;
  /** Archived objects of those days now under an S3 Object Lock legal hold. */
  objectsLocked: number;
}

export interface SurveyTableInput {
  table: ResolvedTableRef;
  cutoff: string;
}

/** What a run reads once it holds the table's lock. */
export interface TableSurvey {
  /** The days restores hold, merged: the run leaves them alone. */
  holds: DayRange[];
  skipped: SkippedRows;
}

export interface ArchiveTotals {
  batches: number;
  rowsArchived: number;
  rowsDeleted: number;
  rowsChanged: number;
  bytes: number;
  objects: number;
}

export type ArchiveTableOutcome =
  | ({
      outcome: 'archived';
      run: string;
      cutoff: string;
      schemaChanged: boolean;
      skipped: SkippedRows;
    } & ArchiveTotals)
  | { outcome: 'locked'; heldBy: string }
  | { outcome: 'dry-run'; cutoff: string; estimate: ArchiveEstimate };

/** A step waiting out a fault that a retry can fix: what, since when, and the last error. */
export interface Waiting {
  step: string;
  since: string;
  /** Rounds of retries so far (each round is a few attempts of the activity). */
  rounds: number;
  lastError: string;
  nextTryAt: string;
}

export interface ArchiveProgress {
  table: string;
  state:
    | 'starting'
    | 'waiting for lock'
    | 'archiving'
    | 'pausing'
    | 'throttled'
    | 'waiting out a fault'
    | 'done'
    | 'dry run';
  /** While a step waits out a fault (a database, store or network outage). */
  waiting?: Waiting;
  cutoff: string | null;
  currentDay: string | null;
  lastError: string | null;
  totals: ArchiveTotals;
  /** Old rows legal holds keep in the table, hold by hold. */
  held?: HeldRows[];
  /** While throttled: the signals over their limits, why, and until when (ISO time). */
  throttledBy?: ThrottleSignalName[];
  throttleReason?: string;
  throttledUntil?: string;
  /** Rows per batch now (adapted by throttling when target_batch_ms is set). */
  batchSize?: number;
}

export const emptyTotals = (): ArchiveTotals => ({
  batches: 0,
  rowsArchived: 0,
  rowsDeleted: 0,
  rowsChanged: 0,
  bytes: 0,
  objects: 0,
});

/** Readable, unique per table: a second start while one runs is refused by Temporal itself. */
export function archiveTableWorkflowId(ref: ResolvedTableRef, dryRun = false): string {
  return `${dryRun ? 'archive-dry-run' : 'archive'}/${tablePath(ref)}`;
}
