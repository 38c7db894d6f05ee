import type { S3Client } from '@aws-sdk/client-s3';
import { LOCK_CLASS_ID } from '../../src/postgres/sql/table-lock';
import type { DeletionReceipt } from '../../src/store/documents';
import { listAll, readJsonObject, readRows } from './bucket';
import type { TestDatabase } from './database';

/** One row as text: each column as PostgreSQL prints it (or null), keyed by column name. */
export type RowText = Record<string, string | null>;

/** A row as found in an archive data object. */
export interface ArchivedRow {
  object: string;
  row: RowText;
}

/**
 * Every data object under the prefix (sorted by key), every row they hold, and every key
 * (data objects, manifests, receipts, schema snapshots, watermark).
 */
export async function readArchive(
  s3: S3Client,
  prefix: string,
): Promise<{ keys: string[]; objects: string[]; rows: ArchivedRow[] }> {
  const keys = (await listAll(s3, prefix)).map((o) => o.key);
  const objects = keys.filter((key) => key.endsWith('.jsonl.gz'));
  const rows: ArchivedRow[] = [];
  for (const object of objects) {
    for (const row of await readRows(s3, object)) rows.push({ object, row });
  }
  return { keys, objects, rows };
}

/** The deletion receipt beside a data object (what its delete step removed). */
export function readReceipt(s3: S3Client, object: string): Promise<DeletionReceipt> {
  return readJsonObject<DeletionReceipt>(s3, object.replace(/\.jsonl\.gz$/, '.deleted.json'));
}

/** The archived rows grouped by their `id` column, in the order they were read. */
export function byId(rows: ArchivedRow[]): Map<string, ArchivedRow[]> {
  const out = new Map<string, ArchivedRow[]>();
  for (const r of rows) {
    const id = r.row.id!;
    const list = out.get(id);
    if (list) list.push(r);
    else out.set(id, [r]);
  }
  return out;
}

/**
 * The rows of the usual test audit table (id, created_at, actor, payload) as text, keyed by
 * id: the form an archived line holds. The TestDatabase pool prints timestamps in UTC, as
 * the archiver's sessions do.
 */
export async function auditRowTexts(
  db: TestDatabase,
  where = 'true',
  params: unknown[] = [],
): Promise<Map<string, RowText>> {
  const rows = await db.query<RowText>(
    `select id::text as id, created_at::text as created_at, actor, payload::text as payload
       from audit_log where ${where}`,
    params,
  );
  return new Map(rows.map((r) => [r.id!, r]));
}

/** How many of the timestamps (PostgreSQL text forms) are at or after the instant. */
export async function countNotBefore(
  db: TestDatabase,
  timestamps: string[],
  instant: string,
): Promise<number> {
  const { n } = await db.one<{ n: number }>(
    `select count(*)::int as n from unnest($1::text[]) as t(ts) where ts::timestamptz >= $2::timestamptz`,
    [timestamps, instant],
  );
  return n;
}

/** How many of the archiver's table locks are held in the test's database right now. */
export async function archiverLocks(db: TestDatabase): Promise<number> {
  const { n } = await db.one<{ n: number }>(
    `select count(*)::int as n from pg_locks
      where locktype = 'advisory' and classid = $1::int::oid
        and database = (select oid from pg_database where datname = current_database())`,
    [LOCK_CLASS_ID],
  );
  return n;
}
