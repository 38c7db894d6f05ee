/** The JSON documents the archiver writes next to the data (CONTRACT §2.4). */

export const OBJECT_MANIFEST_FORMAT = 'audit-archiver/object-manifest@1';
export const DELETION_MANIFEST_FORMAT = 'audit-archiver/deletion-manifest@1';
export const DELETION_RECEIPT_FORMAT = 'audit-archiver/deletion-receipt@1';
export const WATERMARK_FORMAT = 'audit-archiver/watermark@1';

/** Describes one data object: enough to list, validate and restore it from the bucket alone. */
export interface ObjectManifest {
  format: typeof OBJECT_MANIFEST_FORMAT;
  object: string;
  database: string;
  schema: string;
  table: string;
  schemaHash: string;
  schemaKey: string;
  /** UTC day of every row in the object, YYYY-MM-DD. */
  day: string;
  rowCount: number;
  primaryKey: { column: string; first: string; last: string };
  /** Oldest and newest timestamp-column values (text form); the newest also in epoch µs. */
  timestamp: { column: string; min: string; max: string; maxMicros: string };
  /** SHA-256 of the stored (compressed) bytes. */
  sha256: string;
  bytes: number;
  /** gzip of JSON Lines: one object per row, each value in PostgreSQL's text form or null. */
  encoding: 'jsonl+gzip';
  cutoff: string;
  workflowId: string;
  run: string;
  batch: number;
  createdAt: string;
}

/** The exact rows the delete step may remove, derived from the stored object as read back. */
export interface DeletionManifest {
  format: typeof DELETION_MANIFEST_FORMAT;
  object: string;
  objectSha256: string;
  rowCount: number;
  keyColumn: string;
  /** md5 of each row's archived line, in the order of `keys`. */
  fingerprint: 'md5(line)';
  keys: string[];
  fingerprints: string[];
  createdAt: string;
}

export interface DeletionReceipt {
  format: typeof DELETION_RECEIPT_FORMAT;
  object: string;
  listed: number;
  deleted: number;
  /** Listed rows still in the table because they changed after the export. */
  changed: number;
  /** Listed rows no longer in the table before this delete (an earlier attempt, or someone else). */
  alreadyGone: number;
  workflowId: string;
  deletedAt: string;
}

export interface Watermark {
  format: typeof WATERMARK_FORMAT;
  database: string;
  schema: string;
  table: string;
  /** The newest timestamp-column value archived so far; only ever moves forward. */
  archivedThrough: string;
  archivedThroughMicros: string;
  lastRun: string;
  lastCutoff: string;
  updatedAt: string;
}
