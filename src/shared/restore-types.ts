import type { ResolvedTableRef, TableRef } from './table-ref';

/** What to do with an archived row whose key already exists in the target table. */
export type ConflictStrategy = 'skip' | 'overwrite' | 'fail';
export const CONFLICT_STRATEGIES: readonly ConflictStrategy[] = ['skip', 'overwrite', 'fail'];

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
  /** Plan only: say what would be written, write nothing. */
  dryRun?: boolean;
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
  rows: number;
  bytes: number;
  schemaHash: string;
  /** Already restored into this target (the restore watermark). */
  restored: boolean;
}

export interface RestorePlan {
  source: ResolvedTableRef;
  target: RestoreTarget;
  objects: PlannedObject[];
  /** The objects this restore writes, in order. */
  toRestore: string[];
  columnPlans: ColumnPlan[];
  /** The decision in words, printed before any row is written. */
  decision: string[];
}

export interface PlanRestoreInput {
  source: ResolvedTableRef;
  target: RestoreTarget;
  objects?: string[];
  startDate?: string;
  endDate?: string;
  ignoreWatermark: boolean;
  dropMissingColumns: boolean;
}

export interface RestoreObjectInput {
  source: ResolvedTableRef;
  target: RestoreTarget;
  object: string;
  conflict: ConflictStrategy;
  dropMissingColumns: boolean;
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
  | { outcome: 'dry-run'; plan: RestorePlan };

export interface RestoreProgress {
  state: 'planning' | 'restoring' | 'done';
  plan: RestorePlan | null;
  current: string | null;
  totals: RestoreTotals;
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
  return `restore/${target.database}/${target.schema}.${target.table}`;
}
