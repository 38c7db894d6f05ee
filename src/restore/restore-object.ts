import type { PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { committedIntent } from '../archive/delete-batch';
import { lineFingerprint, readBackVerified } from '../archive/read-back';
import { TableSql } from '../archive/table-sql';
import type { DbColumnRow } from '../postgres/sql/table-columns';
import { RestoreRefusedError, VerificationError } from '../shared/errors';
import type { ConflictStrategy, RestoreLines, RestoreObjectResult } from '../shared/restore-types';
import type { TableArchive } from '../store/archive-store';
import type { ObjectManifest, SchemaSnapshot } from '../store/documents';
import { planColumns } from './column-plan';
import { copyLine, RestoreSql } from './restore-sql';

export interface RestoreTargetShape {
  schema: string;
  table: string;
  columns: DbColumnRow[];
  keyIsUnique: boolean;
}

export interface RestoreObjectIo {
  client: PoolClient;
  archive: TableArchive;
  signal: AbortSignal;
  onRows?: (rows: number) => void;
}

/**
 * Restores one archived object into the target in one transaction: its lines are read back
 * from the store and checked against the manifest as they stream into COPY, then written by
 * the conflict strategy; a failed check or a refused conflict rolls the whole object back.
 *
 * By default (`lines` = deleted) only the row versions the archive's delete removed are
 * written, as the deletion receipt lists them: never a version of a row that was still live
 * (changed after its export) or that a later batch archived again. Idempotent: rows already
 * present exactly as archived count as identical.
 */
export async function restoreObject(
  io: RestoreObjectIo,
  input: {
    object: string;
    target: RestoreTargetShape;
    conflict: ConflictStrategy;
    dropMissingColumns: boolean;
    lines: RestoreLines;
  },
): Promise<RestoreObjectResult> {
  const { archive, client } = io;
  const manifest = await archive.requireManifest(input.object);
  const keys = await restoredKeys(archive, client, manifest, input.lines);
  const snapshot = await archive.requireSchemaSnapshot(manifest.schemaKey);
  const sql = restoreSql(manifest, snapshot, input.target, input.dropMissingColumns);
  if (input.conflict === 'overwrite' && !input.target.keyIsUnique) {
    throw new RestoreRefusedError(
      `overwrite needs a unique index on "${manifest.primaryKey.column}" in the target`,
    );
  }
  const expected = keys?.size ?? manifest.rowCount;
  const empty = {
    object: input.object,
    rows: 0,
    inserted: 0,
    overwritten: 0,
    skipped: 0,
    identical: 0,
  };
  if (expected === 0) return empty;

  await client.query('begin');
  try {
    await client.query(sql.createStaging());
    let rows = 0;
    let staged = 0;
    const columns = sql.columns;
    await readBackVerified(archive, manifest, {
      signal: io.signal,
      sink: client.query(copyFrom(sql.copyIn())),
      toSink: ({ line, key, row }) => {
        if (++rows % 10_000 === 0) io.onRows?.(rows);
        if (keys && !keys.has(key)) return undefined;
        staged++;
        return copyLine(row, columns, lineFingerprint(line));
      },
    });
    if (staged !== expected) {
      throw new VerificationError(
        `${archive.where(input.object)}: its deletion receipt lists ${expected} rows, the object holds ${staged} of them`,
        { object: input.object },
      );
    }
    const { rows: found } = await client.query<{
      identical: number;
      conflicting: number;
      staged: number;
    }>(sql.existing());
    const { identical, conflicting } = found[0]!;
    if (found[0]!.staged !== expected) {
      throw new VerificationError(
        `${input.object}: staged ${found[0]!.staged} rows of ${expected}`,
      );
    }
    if (input.conflict === 'fail' && conflicting > 0) {
      throw new RestoreRefusedError(
        `${input.object}: ${conflicting} archived rows have keys that exist in ${input.target.schema}.${input.target.table} with other content; nothing of this object was written (conflict strategy fail)`,
      );
    }
    const { rows: written } = await client.query<{ inserted: boolean }>(sql.write(input.conflict));
    const inserted = written.filter((w) => w.inserted).length;
    const overwritten = written.length - inserted;
    const skipped = input.conflict === 'skip' ? conflicting : 0;
    if (inserted + overwritten + skipped + identical !== expected) {
      throw new VerificationError(
        `${input.object}: wrote ${inserted + overwritten}, skipped ${skipped}, found ${identical} identical of ${expected} rows; rolled back`,
      );
    }
    await client.query('commit');
    return { object: input.object, rows: expected, inserted, overwritten, skipped, identical };
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  }
}

/**
 * The keys whose archived versions a restore writes: the deletion receipt's keys by default
 * (none when the batch was never deleted), every line with `all` (undefined).
 */
async function restoredKeys(
  archive: TableArchive,
  client: PoolClient,
  manifest: ObjectManifest,
  lines: RestoreLines,
): Promise<Set<string> | undefined> {
  // The deletion manifest recorded the stored object's digest when the rows were deleted: a
  // manifest that names other bytes (rewritten with the object) is not what was deleted.
  const deletion = await archive.deletionManifest(manifest.object);
  if (deletion && deletion.objectSha256 !== manifest.sha256) {
    throw new VerificationError(
      `${archive.where(manifest.object)}: the manifest's SHA-256 ${manifest.sha256} differs from the ${deletion.objectSha256} its deletion manifest recorded; not restored`,
      { object: manifest.object },
    );
  }
  if (lines === 'all') return undefined;
  const receipt = await archive.receipt(manifest.object);
  if (receipt) return new Set(receipt.deletedKeys);
  // No receipt: a delete may still have committed (its run ended, or the receipt was lost,
  // between its commit and its receipt). Its intent names its transaction; PostgreSQL says
  // whether it committed, and then its keys are what was deleted.
  const intent = await committedIntent({ archive, client }, manifest.object);
  return new Set(intent?.deletedKeys ?? []);
}

function restoreSql(
  manifest: ObjectManifest,
  snapshot: SchemaSnapshot,
  target: RestoreTargetShape,
  dropMissingColumns: boolean,
): RestoreSql {
  const plan = planColumns(snapshot, target.columns);
  if (plan.missing.length > 0 && !dropMissingColumns) {
    throw new RestoreRefusedError(`target lacks archived columns ${plan.missing.join(', ')}`);
  }
  const targetSql = new TableSql({
    schema: target.schema,
    name: target.table,
    timestampColumn: manifest.timestamp.column,
    primaryKey: manifest.primaryKey.column,
    columns: target.columns,
  });
  return new RestoreSql({
    schema: target.schema,
    table: target.table,
    keyColumn: manifest.primaryKey.column,
    plan,
    rowJson: (alias) => targetSql.rowJson(alias),
    sameSchema:
      plan.missing.length === 0 &&
      plan.defaulted.length === 0 &&
      plan.generated.length === 0 &&
      !plan.columns.some((c) => c.cast) &&
      plan.columns.length === snapshot.columns.length,
  });
}
