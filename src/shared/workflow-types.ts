import type { ResolvedTableRef, TableRef } from './table-ref';

/** Input of the SnapshotSchema workflow (and the snapshotSchema activity). */
export interface SnapshotSchemaInput extends TableRef {
  /**
   * Set by archive runs: a table whose schema_drift is block stops when its schema changed.
   * SnapshotSchema itself leaves it unset, so that it accepts a change.
   */
  enforceDrift?: boolean;
}

export interface SnapshotSchemaResult extends ResolvedTableRef {
  schemaHash: string;
  columnCount: number;
  primaryKey: string[];
  /** Bucket and key of the stored snapshot. */
  bucket: string;
  key: string;
  /** False when this exact schema had been stored before (the object was left as it was). */
  created: boolean;
  /** The table's previous schema when it changed since the last snapshot, else null. */
  previousSchemaHash: string | null;
}

export const DEFAULT_TASK_QUEUE = 'audit-archiver';

/** Readable and unique per table (the CLI attaches to a run already going under this id). */
export function snapshotSchemaWorkflowId(ref: ResolvedTableRef): string {
  return `snapshot-schema/${ref.database}/${ref.schema}.${ref.table}`;
}
