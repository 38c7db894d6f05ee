import type { ArchiveEstimate, ArchiveTotals, SkippedRows } from './archive-types';
import type { ResolvedTableRef } from './table-ref';

/** Signal the lock activity sends its workflow once the lock is held. */
export const LOCK_GRANTED_SIGNAL = 'tableLockGranted';

/** Input of ArchiveAll: which configured tables to archive (all by default). */
export interface ArchiveAllInput {
  database?: string;
  /** `schema.table` or a bare table name. */
  table?: string;
  dryRun?: boolean;
  /** Carried across continue-as-new; do not set by hand. */
  state?: ArchiveAllState;
}

export interface ArchiveAllState {
  pending: ResolvedTableRef[];
  results: TableResult[];
  limits: RunLimits;
}

export interface RunLimits {
  maxParallelTables: number;
  maxParallelDatabases: number;
  maxParallelTablesPerDatabase: number;
}

export interface RunPlan {
  tables: ResolvedTableRef[];
  limits: RunLimits;
  /** The worker's config digest (src/config/digest.ts); absent in runs recorded before it. */
  configDigest?: string;
}

export type TableResultOutcome = 'archived' | 'dry-run' | 'locked' | 'already running' | 'failed';

export interface TableResult extends ResolvedTableRef, Partial<ArchiveTotals> {
  workflowId: string;
  outcome: TableResultOutcome;
  durationMs: number;
  /** Why it failed, or who holds the lock. */
  reason?: string;
  /** Old rows the run left in the table, and why. */
  skipped?: SkippedRows;
  estimate?: ArchiveEstimate;
}

export interface ArchiveRunResult {
  tables: TableResult[];
  failed: number;
}

export interface ArchiveRunProgress {
  finished: TableResult[];
  running: { workflowId: string; table: ResolvedTableRef }[];
  pending: number;
}
