import { createHash } from 'node:crypto';

export const SCHEMA_SNAPSHOT_FORMAT = 'audit-archiver/schema-snapshot@1';

export interface SnapshotColumn {
  name: string;
  /** `format_type()` output: the exact type, with modifiers, PostgreSQL can cast back to. */
  type: string;
  nullable: boolean;
}

/** What the schema hash covers: everything that decides how archived rows read back. */
export interface TableShape {
  columns: SnapshotColumn[];
  primaryKey: string[];
}

export interface SchemaSnapshot extends TableShape {
  format: typeof SCHEMA_SNAPSHOT_FORMAT;
  database: string;
  schema: string;
  table: string;
  schemaHash: string;
  /** The configured columns the archiver uses for this table. */
  timestampColumn: string;
  archiveKey: string;
  capturedAt: string;
  capturedBy: string;
}

/**
 * SHA-256 of the table's shape in a fixed canonical form, so the same columns, types, order
 * and key always give the same hash, on any machine.
 */
export function schemaHash(shape: TableShape): string {
  const canonical = JSON.stringify({
    columns: shape.columns.map((c) => [c.name, c.type, c.nullable]),
    primaryKey: shape.primaryKey,
  });
  return createHash('sha256').update(canonical).digest('hex');
}
