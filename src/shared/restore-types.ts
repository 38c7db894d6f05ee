import type { DayRange, Waiting } from './archive-types';
import { tablePath } from './names';
import type { ResolvedTableRef, TableRef } from './table-ref';

/** What to do with an archived row whose key already exists in the target table. */
export type ConflictStrategy = 'skip' | 'overwrite' | 'fail';
export const CONFLICT_STRATEGIES: readonly ConflictStrategy[] = ['skip', 'overwrite', 'fail'];

/**
 * Which archived lines a restore writes: `deleted` (the default) exactly the row versions
 * the archive's deletes removed, as their receipts list them; `all` every line of every
 * object, including versions of rows that were still live when archived (changed since, or
 * of a batch whose delete never ran): for an investigation side by side, not for undoing.
 */
export type RestoreLines = 'deleted' | 'all';
export const RESTORE_LINES: readonly RestoreLines[] = ['deleted', 'all'];

/** Input of Restore: the archived table (names as in the config) and what to bring back. */
export interface RestoreInput extends TableRef {
  /** Data object keys to restore; default: every object of the table (in the day range). */
  objects?: string[];
  /** Inclusive UTC day range, YYYY-MM-DD. */
  startDate?: string;
  endDate?: string;
  /** `schema.table` or `table` (in the source's schema) to restore into; default: the source. */
  targetTable?: string;
  /** Default `fail`. */
  conflict?: ConflictStrategy;
  /** Restore objects even if the restore watermark says they were restored into this target. */
  ignoreWatermark?: boolean;
  /** Leave out archived columns the target no longer has, instead of refusing. */
  dropMissingColumns?: boolean;
  /** Default `deleted`. */
  lines?: RestoreLines;
  /** Plan only: say what would be written, write nothing. */
  dryRun?: boolean;
  /** With dryRun: list the objects after this key (a page of the listing). */
  listAfter?: string;
}

export interface RestoreTarget {
  database: string;
  schema: string;
  table: string;
}

/** How the archived columns of one schema snapshot land in the target table. */
export interface ColumnPlan {
  schemaHash: string;
  /** Restored columns; `cast` when the target's type differs from the archived one. */
  columns: { name: string; archivedType: string; targetType: string; cast: boolean }[];
  /** Target columns the archive does not have: they take their defaults. */
  defaulted: string[];
  /** Archived columns the target does not have (refused unless dropMissingColumns). */
  missing: string[];
  /** Target columns PostgreSQL computes (generated): never written. */
  generated: string[];
}

export interface PlannedObject {
  object: string;
  day: string;
  /** Lines in the object. */
  rows: number;
  /** Rows its delete removed (what a default restore writes); null when it was never deleted. */
  deleted: number | null;
  bytes: number;
  /** Already restored into this target (the restore watermark). */
  restored: boolean;
  /** This restore writes it. */
  selected: boolean;
}

/** Objects per page of a restore (and of a plan's listing): bounded payloads whatever the archive. */
export const RESTORE_PAGE_SIZE = 200;

export interface RestorePlan {
  source: ResolvedTableRef;
  target: RestoreTarget;
  lines: RestoreLines;
  /** Every object of the range, and how many of them this restore writes. */
  objects: number;
  toRestore: number;
  /** Rows this restore writes. */
  rows: number;
  /** The UTC days it writes rows of (held from the archive when restoring into the source). */
  days: DayRange[];
  columnPlans: ColumnPlan[];
  /** The decision in words, printed before any row is written. */
  decision: string[];
  /** One page of the objects, after `listAfter`, for listings; `more` when others follow. */
  page: PlannedObject[];
  more: boolean;
}

export interface RestoreSelection {
  source: ResolvedTableRef;
  target: RestoreTarget;
  objects?: string[];
  startDate?: string;
  endDate?: string;
  ignoreWatermark: boolean;
  lines: RestoreLines;
}

export interface PlanRestoreInput extends RestoreSelection {
  dropMissingColumns: boolean;
  listAfter?: string;
}

export interface RestorePageInput extends RestoreSelection {
  /** The last object of the previous page. */
  after?: string;
}

export interface RestorePage {
  objects: string[];
  more: boolean;
}

export interface RestoreObjectInput {
  source: ResolvedTableRef;
  target: RestoreTarget;
  object: string;
  conflict: ConflictStrategy;
  dropMissingColumns: boolean;
  lines: RestoreLines;
}

export interface HoldDaysInput {
  table: ResolvedTableRef;
  /** Unique per restore (its first run id): a retry writes the same hold. */
  id: string;
  days: DayRange[];
  reason: string;
}

export interface ReleaseHoldsInput extends TableRef {
  /** Holds to release (their ids); default every hold of the table. */
  holds?: string[];
  /** Why, recorded with each release. */
  reason?: string;
  /** Who releases them, as they give it. */
  releasedBy?: string;
  /** List the holds in force, release nothing. */
  dryRun?: boolean;
}

export interface HoldSummary {
  id: string;
  /** restore (a restore's days) or legal (placed with `hold place`). */
  kind: 'restore' | 'legal';
  reason: string;
  days: DayRange[];
  placedBy?: string | undefined;
  workflowId: string;
  createdAt: string;
}

export interface ReleaseHoldsResult {
  /** The holds in force before (dryRun), or the ones released now. */
  holds: HoldSummary[];
  released: boolean;
  /** Archived objects whose Object Lock legal hold the release lifted. */
  objectsUnlocked?: number;
}

/** Input of PlaceHold: a legal hold on days of a table, placed without editing the config. */
export interface PlaceHoldInput extends TableRef {
  reason: string;
  /** First and last UTC day held (YYYY-MM-DD, inclusive). */
  days: DayRange;
  /** Who places it, as they give it (a name, an e-mail address, a ticket). */
  placedBy: string;
}

export interface PlaceHoldResult {
  id: string;
  days: DayRange;
  /** Archived objects of those days put under an S3 Object Lock legal hold. */
  objectsLocked: number;
  /** Whether the bucket has Object Lock (without it, only the rows are held). */
  objectLock: boolean;
}

export interface RestoreObjectResult {
  object: string;
  rows: number;
  inserted: number;
  overwritten: number;
  /** Rows whose key existed with other content, kept as they were (`skip`). */
  skipped: number;
  /** Rows already in the target exactly as archived: nothing to do. */
  identical: number;
}

export interface RestoreTotals {
  objects: number;
  rows: number;
  inserted: number;
  overwritten: number;
  skipped: number;
  identical: number;
}

export type RestoreResult =
  | ({ outcome: 'restored'; plan: RestorePlan } & RestoreTotals)
  | { outcome: 'dry-run'; plan: RestorePlan }
  | { outcome: 'locked'; heldBy: string };

export interface RestoreProgress {
  state: 'planning' | 'waiting for lock' | 'restoring' | 'waiting out a fault' | 'done';
  plan: RestorePlan | null;
  current: string[];
  totals: RestoreTotals;
  waiting?: Waiting;
}

export const emptyRestoreTotals = (): RestoreTotals => ({
  objects: 0,
  rows: 0,
  inserted: 0,
  overwritten: 0,
  skipped: 0,
  identical: 0,
});

/** `restore/<database>/<schema>.<table>`: one restore into a target at a time. */
export function restoreWorkflowId(target: RestoreTarget): string {
  return `restore/${tablePath(target)}`;
}

/** `place-hold/<database>/<schema>.<table>`. */
export function placeHoldWorkflowId(table: ResolvedTableRef): string {
  return `place-hold/${tablePath(table)}`;
}

/** `release-holds/<database>/<schema>.<table>`. */
export function releaseHoldsWorkflowId(table: ResolvedTableRef): string {
  return `release-holds/${tablePath(table)}`;
}
