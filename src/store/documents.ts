import { z } from 'zod';
import { AUDIT_ACTIONS } from '../shared/audit-types';
import { DocumentError } from '../shared/errors';

/**
 * Every JSON document the archiver keeps in the bucket, as a schema. Reading a document
 * checks it against its schema, so a truncated or edited document is one clear error naming
 * its key (DocumentError), never a TypeError somewhere later. The `format` field names the
 * document type and its version: a change of shape is a new version.
 */

const text = z.string();
const day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a day as YYYY-MM-DD');
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 in hex');
const count = z.number().int().min(0);
const digits = z.string().regex(/^-?\d+$/, 'must be an integer as text');
/** A document type: `format` names it and its version, then its own fields. */
function documentSchema<const F extends string, S extends z.ZodRawShape>(format: F, fields: S) {
  return z.object({ format: z.literal(format), ...fields });
}

/** The table a document is about. */
const tableFields = { database: text, schema: text, table: text };

export const OBJECT_MANIFEST_FORMAT = 'audit-archiver/object-manifest@2';
export const ROW_VERSIONS_FORMAT = 'audit-archiver/row-versions@1';
export const DELETION_MANIFEST_FORMAT = 'audit-archiver/deletion-manifest@1';
export const DELETE_INTENT_FORMAT = 'audit-archiver/delete-intent@1';
export const DELETION_RECEIPT_FORMAT = 'audit-archiver/deletion-receipt@2';
export const WATERMARK_FORMAT = 'audit-archiver/watermark@1';
export const HOLD_FORMAT = 'audit-archiver/hold@1';
export const HOLD_RELEASE_FORMAT = 'audit-archiver/hold-release@1';
export const RESTORE_RECEIPT_FORMAT = 'audit-archiver/restore-receipt@1';
export const SCHEMA_SNAPSHOT_FORMAT = 'audit-archiver/schema-snapshot@1';
export const LATEST_SCHEMA_FORMAT = 'audit-archiver/latest-schema@1';
export const SCHEMA_CHANGE_FORMAT = 'audit-archiver/schema-change@1';
export const AUDIT_RECORD_FORMAT = 'audit-archiver/audit-record@1';
export const AUDIT_HEAD_FORMAT = 'audit-archiver/audit-head@1';

/** Describes one data object: enough to list, validate and restore it from the bucket alone. */
export const objectManifestSchema = documentSchema(OBJECT_MANIFEST_FORMAT, {
  object: text,
  ...tableFields,
  schemaHash: sha256,
  schemaKey: text,
  /** UTC day of every row in the object. */
  day,
  rowCount: count,
  primaryKey: z.object({ column: text, first: text, last: text }),
  /** Oldest and newest timestamp-column values (text form); the newest also in epoch µs. */
  timestamp: z.object({ column: text, min: text, max: text, maxMicros: digits }),
  /** SHA-256 and size of the stored (compressed) bytes. */
  sha256,
  bytes: count,
  /** Size of the decompressed JSON Lines and of its longest line: read-backs stop beyond them. */
  uncompressedBytes: count,
  maxLineBytes: count,
  /** gzip of JSON Lines: one object per row, each value in PostgreSQL's text form or null. */
  encoding: z.literal('jsonl+gzip'),
  cutoff: text,
  workflowId: text,
  run: text,
  batch: count,
  /** True when the manifest was made from a read-back of an object an earlier attempt stored. */
  adopted: z.boolean(),
  createdAt: text,
});
export type ObjectManifest = z.infer<typeof objectManifestSchema>;

/** PostgreSQL's identity of a row version: where the tuple is (ctid) and who wrote it (xmin). */
const rowVersions = z.object({
  ctids: z.array(z.string().regex(/^\(\d+,\d+\)$/, 'must be a ctid as (block,item)')),
  xmins: z.array(z.string().regex(/^\d+$/, 'must be a transaction id')),
});
export type RowVersions = z.infer<typeof rowVersions>;

/**
 * The version of each row of a data object as the export read it, line by line, written by
 * the export that stored the object. It names no content: the deletion manifest pairs it
 * with the keys and fingerprints read back from the object.
 */
export const rowVersionsSchema = documentSchema(ROW_VERSIONS_FORMAT, {
  object: text,
  objectSha256: sha256,
  rowCount: count,
  ...rowVersions.shape,
  createdAt: text,
}).refine((d) => d.ctids.length === d.rowCount && d.xmins.length === d.rowCount, {
  message: 'ctids, xmins and rowCount do not agree',
});
export type RowVersionsDocument = z.infer<typeof rowVersionsSchema>;

/** The exact rows the delete step may remove, derived from the stored object as read back. */
export const deletionManifestSchema = documentSchema(DELETION_MANIFEST_FORMAT, {
  object: text,
  objectSha256: sha256,
  rowCount: count,
  keyColumn: text,
  /** md5 of each row's archived line, in the order of `keys`. */
  fingerprint: z.literal('md5(line)'),
  keys: z.array(text),
  fingerprints: z.array(z.string().regex(/^[0-9a-f]{32}$/)),
  /**
   * The version of each row, in the order of `keys`, when the export recorded them: the
   * delete removes a row still at that version without recomputing its fingerprint. Absent
   * (an adopted object, or a manifest from before versions were kept), every row is matched
   * by fingerprint; a reader that does not know the field does the same, so it is no new
   * format.
   */
  versions: rowVersions.optional(),
  createdAt: text,
})
  .refine((d) => d.keys.length === d.fingerprints.length && d.keys.length === d.rowCount, {
    message: 'keys, fingerprints and rowCount do not agree',
  })
  .refine(
    (d) =>
      !d.versions ||
      (d.versions.ctids.length === d.rowCount && d.versions.xmins.length === d.rowCount),
    { message: 'versions and rowCount do not agree' },
  );
export type DeletionManifest = z.infer<typeof deletionManifestSchema>;

/** What one delete transaction found and removed. */
const deleteOutcome = {
  /** Rows the deletion manifest listed. */
  listed: count,
  /** Listed rows this delete removed: exactly the keys in `deletedKeys`. */
  deleted: count,
  /** Listed rows still in the table because they changed after the export. */
  changed: count,
  /** Listed rows no longer in the table before this delete (someone else deleted them). */
  alreadyGone: count,
  deletedKeys: z.array(text),
  /** The PostgreSQL transaction that deleted them. */
  txid: digits,
  workflowId: text,
};

/**
 * Written by a delete transaction after its DELETE and before its COMMIT: if the worker dies
 * between the commit and the receipt, the next attempt asks PostgreSQL whether `txid`
 * committed and writes the receipt from this, so what was deleted is never lost.
 */
export const deleteIntentSchema = documentSchema(DELETE_INTENT_FORMAT, {
  object: text,
  ...deleteOutcome,
  createdAt: text,
});
export type DeleteIntent = z.infer<typeof deleteIntentSchema>;

/** What the delete removed, key by key: what a restore brings back by default. */
export const deletionReceiptSchema = documentSchema(DELETION_RECEIPT_FORMAT, {
  object: text,
  ...deleteOutcome,
  deletedAt: text,
}).refine((r) => r.deletedKeys.length === r.deleted, {
  message: 'deletedKeys and deleted do not agree',
});
export type DeletionReceipt = z.infer<typeof deletionReceiptSchema>;

export const watermarkSchema = documentSchema(WATERMARK_FORMAT, {
  ...tableFields,
  /** The newest timestamp-column value archived so far; only ever moves forward. */
  archivedThrough: text,
  archivedThroughMicros: digits,
  /** The run (as in data object names) that moved it last, and that run's cutoff. */
  lastRun: text,
  lastCutoff: text,
  updatedAt: text,
});
export type Watermark = z.infer<typeof watermarkSchema>;

/** An inclusive range of UTC days (DayRange in src/shared/archive-types.ts). */
export const dayRangeSchema = z.object({ first: day, last: day });

/**
 * UTC days of a table that the archive leaves alone until the hold is released: placed by a
 * restore (its restored rows are not archived again) or, `kind: legal`, by `audit-archiver
 * hold place` (the rows are kept in the table, and their archived objects under an S3 Object
 * Lock legal hold, for litigation or an investigation). A hold without `kind` is a restore's.
 */
export const holdSchema = documentSchema(HOLD_FORMAT, {
  /** Names the hold: its key below `_holds/`, and what its release names. */
  id: text,
  kind: z.enum(['restore', 'legal']).optional(),
  reason: text,
  days: z.array(dayRangeSchema),
  /** Who placed it, as they gave it (legal holds). */
  placedBy: text.optional(),
  /** The workflow that placed it. */
  workflowId: text,
  runId: text,
  createdAt: text,
});
export type Hold = z.infer<typeof holdSchema>;

/** Ends the hold of the same id. Written beside it once; the hold itself is never removed. */
export const holdReleaseSchema = documentSchema(HOLD_RELEASE_FORMAT, {
  id: text,
  reason: text,
  /** Who released it, as they gave it. */
  releasedBy: text.optional(),
  /** The ReleaseHolds run that wrote it. */
  workflowId: text,
  releasedAt: text,
});
export type HoldRelease = z.infer<typeof holdReleaseSchema>;

/** A restore receipt: which object a restore wrote into which target, and how it went. */
export const restoreReceiptSchema = documentSchema(RESTORE_RECEIPT_FORMAT, {
  object: text,
  target: z.object(tableFields),
  /** The conflict strategy used: skip, overwrite or fail. */
  conflict: text,
  /** Which lines were written: those the deletes removed (the default), or all of them. */
  lines: z.enum(['deleted', 'all']),
  /** Rows taken from the object, then what became of each of them in the target. */
  rows: count,
  inserted: count,
  overwritten: count,
  skipped: count,
  identical: count,
  workflowId: text,
  restoredAt: text,
});
export type RestoreReceipt = z.infer<typeof restoreReceiptSchema>;

export const snapshotColumnSchema = z.object({
  name: text,
  /** `format_type()` output: the exact type, with modifiers, PostgreSQL can cast back to. */
  type: text,
  nullable: z.boolean(),
});
export type SnapshotColumn = z.infer<typeof snapshotColumnSchema>;

export const schemaSnapshotSchema = documentSchema(SCHEMA_SNAPSHOT_FORMAT, {
  ...tableFields,
  schemaHash: sha256,
  columns: z.array(snapshotColumnSchema),
  primaryKey: z.array(text),
  /** The configured columns the archiver uses for this table. */
  timestampColumn: text,
  archiveKey: text,
  capturedAt: text,
  /** The workflow that took the snapshot. */
  capturedBy: text,
});
export type SchemaSnapshot = z.infer<typeof schemaSnapshotSchema>;

/** Points at the newest schema snapshot of a table; rewritten only when the schema changes. */
export const latestSchemaSchema = documentSchema(LATEST_SCHEMA_FORMAT, {
  schemaHash: sha256,
  key: text,
  since: text,
});
export type LatestSchema = z.infer<typeof latestSchemaSchema>;

/** What changed between two snapshots of a table. */
export const schemaChangeSchema = documentSchema(SCHEMA_CHANGE_FORMAT, {
  from: sha256,
  to: sha256,
  detectedAt: text,
  added: z.array(snapshotColumnSchema),
  removed: z.array(snapshotColumnSchema),
  changed: z.array(z.object({ name: text, from: snapshotColumnSchema, to: snapshotColumnSchema })),
  primaryKey: z.object({ from: z.array(text), to: z.array(text) }).nullable(),
});
export type SchemaChange = z.infer<typeof schemaChangeSchema>;

/**
 * One record of the audit trail: what the archiver did, who did it and when. Records form a
 * hash chain: `hash` is the SHA-256 of the record without it (compact JSON, in this order),
 * and `prev` the `hash` of the record before (null for the first), so that editing,
 * removing or reordering any record shows (src/store/audit-trail.ts).
 */
export const auditRecordSchema = documentSchema(AUDIT_RECORD_FORMAT, {
  seq: count,
  prev: sha256.nullable(),
  at: text,
  action: z.enum(AUDIT_ACTIONS),
  /** Names the event: a retried step that wrote its record twice writes the same event. */
  event: text,
  /** The worker process (pid@host) and the workflow run whose step it was. */
  actor: z.object({ worker: text, workflowId: text, runId: text }),
  table: z.object(tableFields).nullable(),
  /** Object keys, counts, checksums: what the action was about. */
  details: z.record(z.string(), z.unknown()),
  hash: sha256,
});
export type AuditRecord = z.infer<typeof auditRecordSchema>;

/** The newest record of the trail as its writer last saw it: a hint for writers, a check for readers. */
export const auditHeadSchema = documentSchema(AUDIT_HEAD_FORMAT, {
  seq: count,
  hash: sha256,
  at: text,
});
export type AuditHead = z.infer<typeof auditHeadSchema>;

/** A document's text as the schema's type, or a DocumentError naming where and what is wrong. */
export function parseDocument<S extends z.ZodType>(
  where: string,
  body: string,
  schema: S,
): z.infer<S> {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new DocumentError(`${where}: is not valid JSON (truncated or damaged?)`, { where });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new DocumentError(`${where}: is not a JSON object`, { where });
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    throw new DocumentError(`${where}: ${path}${issue.message}`, { where });
  }
  return parsed.data;
}
