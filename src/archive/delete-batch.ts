import type { ClientBase, PoolClient } from 'pg';
import {
  currentTransactionId,
  enterDeleteGate,
  transactionStatus,
} from '../postgres/sql/table-lock';
import type { DeleteBatchResult, LockHolder } from '../shared/archive-types';
import {
  DeleteMismatchError,
  LockLostError,
  SchemaChangedError,
  StillBusyError,
  VerificationError,
} from '../shared/errors';
import type { TableArchive } from '../store/archive-store';
import {
  DELETE_INTENT_FORMAT,
  DELETION_RECEIPT_FORMAT,
  type DeleteIntent,
  type DeletionManifest,
  type DeletionReceipt,
} from '../store/documents';
import type { TableSql } from './table-sql';

export interface DeleteBatchIo {
  client: PoolClient;
  archive: TableArchive;
  sql: TableSql;
  /** The schema hash the table has now; the batch's manifest must have been made under it. */
  schemaHash: string;
  workflowId: string;
  signal: AbortSignal;
  /**
   * The legal hold on the object's day now, if any: asked inside the delete transaction, so
   * that a hold placed while a run goes on stops every delete that has not begun.
   */
  legalHoldOn?: (object: string) => Promise<string | undefined>;
}

/**
 * Deletes, in one transaction, the rows of a batch's deletion manifest whose current content
 * still matches the archived line, while the run's lock session holds the table lock, and
 * records which keys it deleted. Idempotent, and safe when attempts overlap:
 *
 * - each delete transaction of a table passes the table's delete gate, so deletes of one
 *   table (and any earlier attempt of this one) never run at the same time;
 * - after its DELETE and before its COMMIT, a transaction writes a delete intent (its txid
 *   and the keys it deleted); an attempt that finds no receipt asks PostgreSQL whether an
 *   earlier intent's transaction committed, and if so writes the receipt from it and deletes
 *   nothing. So a crash between commit and receipt neither loses the record of what was
 *   deleted nor deletes twice.
 *
 * Rows changed since the export stay (archived again later), rows already gone (deleted by
 * the application) are not a mismatch; a DELETE that removes anything the manifest does not
 * list, or a key twice, is rolled back.
 */
export async function deleteBatch(
  io: DeleteBatchIo,
  input: { object: string; lock: LockHolder },
): Promise<DeleteBatchResult> {
  const { archive, client, sql } = io;
  const { object } = input;
  const [done, manifest, deletion] = await Promise.all([
    archive.receipt(object),
    archive.requireManifest(object),
    archive.deletionManifest(object),
  ]);
  if (done) return outcomeOf(done);
  if (
    !deletion ||
    deletion.objectSha256 !== manifest.sha256 ||
    deletion.rowCount !== manifest.rowCount
  ) {
    throw new VerificationError(
      `${archive.where(object)}: its deletion manifest is missing or does not match the object`,
      { object },
    );
  }
  if (manifest.schemaHash !== io.schemaHash) {
    throw new SchemaChangedError(
      `${sql.table}: the schema changed during the run (${manifest.schemaHash.slice(0, 12)} -> ${io.schemaHash.slice(0, 12)}); nothing was deleted, the next run archives with the new schema`,
      { object },
    );
  }

  await client.query('begin');
  let committed: DeleteIntent | undefined;
  try {
    const { gate, holdsLock } = await enterDeleteGate(client, sql.table, input.lock);
    if (!gate) {
      throw new StillBusyError(
        `${sql.table}: another delete of this table is still open (an earlier attempt of this one?); retrying once it ends`,
      );
    }
    if (!holdsLock) {
      throw new LockLostError(
        `${sql.table}: this run no longer holds the table's lock; nothing was deleted`,
      );
    }
    const earlier = await committedIntent(io, object);
    const heldBy = earlier ? undefined : await io.legalHoldOn?.(object);
    if (heldBy) {
      await client.query('rollback');
      const listed = deletion.keys.length;
      return { listed, deleted: 0, changed: 0, alreadyGone: 0, heldBy };
    }
    if (earlier) {
      await client.query('rollback');
      committed = earlier;
    } else {
      const txid = await currentTransactionId(client);
      const { deletedKeys, changed } = await deleteArchivedRows(client, sql, deletion);
      const intent: DeleteIntent = {
        format: DELETE_INTENT_FORMAT,
        object,
        listed: deletion.keys.length,
        deleted: deletedKeys.length,
        changed,
        alreadyGone: deletion.keys.length - deletedKeys.length - changed,
        deletedKeys,
        txid,
        workflowId: io.workflowId,
        createdAt: new Date().toISOString(),
      };
      io.signal.throwIfAborted();
      await archive.saveDeleteIntent(intent, io.signal);
      await client.query('commit');
      committed = intent;
    }
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  }
  const receipt: DeletionReceipt = {
    format: DELETION_RECEIPT_FORMAT,
    object,
    listed: committed.listed,
    deleted: committed.deleted,
    changed: committed.changed,
    alreadyGone: committed.alreadyGone,
    deletedKeys: committed.deletedKeys,
    txid: committed.txid,
    workflowId: committed.workflowId,
    deletedAt: committed.createdAt,
  };
  return outcomeOf(await archive.saveReceipt(receipt));
}

/**
 * The intent of a delete transaction of `object` that committed, if any, as PostgreSQL (the
 * table's database, on `client`) tells it: what that delete removed, when its receipt is
 * missing. A transaction still open is retried until it ends; one PostgreSQL no longer knows
 * the fate of is refused, naming it.
 */
export async function committedIntent(
  io: { archive: TableArchive; client: ClientBase; signal?: AbortSignal },
  object: string,
): Promise<DeleteIntent | undefined> {
  for (const intent of await io.archive.deleteIntents(object, io.signal)) {
    const status = await transactionStatus(io.client, intent.txid);
    if (status === 'committed') return intent;
    if (status === 'in progress') {
      throw new StillBusyError(
        `${io.archive.where(object)}: delete transaction ${intent.txid} is still open; retrying once it ends`,
      );
    }
    if (status === null) {
      throw new VerificationError(
        `${io.archive.where(object)}: PostgreSQL no longer knows whether delete transaction ${intent.txid} committed; compare the table with the object and write the receipt by hand`,
        { object },
      );
    }
  }
  return undefined;
}

/**
 * One row in this many (and the first) that the delete removes by version also has its
 * fingerprint compared: a line the export built wrongly is caught by PostgreSQL itself, at
 * a sixty-fourth of the cost of comparing every row.
 */
const SPOT_CHECK_EVERY = 64;

/**
 * Deletes the listed rows that are still as archived: by version where the deletion
 * manifest has them, then, of the rows left, those whose content still has the archived
 * fingerprint (a row rewritten in place by VACUUM FULL, or updated to the same values).
 * Returns the keys deleted and how many listed rows are still there (changed since the
 * export). Throws, for the caller to roll back, when a row deleted by version differs from
 * its archived line, or when anything but listed keys, each once, was deleted.
 */
async function deleteArchivedRows(
  client: ClientBase,
  sql: TableSql,
  deletion: DeletionManifest,
): Promise<{ deletedKeys: string[]; changed: number }> {
  const deletedKeys: string[] = [];
  let keys = deletion.keys;
  let fingerprints = deletion.fingerprints;
  if (deletion.versions) {
    const spotChecks = fingerprints.map((f, i) => (i % SPOT_CHECK_EVERY === 0 ? f : null));
    const { rows } = await client.query<{ key: string; differs: boolean }>(sql.deleteVersions(), [
      keys,
      deletion.versions.ctids,
      deletion.versions.xmins,
      spotChecks,
    ]);
    const differs = rows.find((r) => r.differs);
    if (differs) {
      throw new DeleteMismatchError(
        `${sql.table}: key ${differs.key} is still the row version the export read, but its archived line differs from the row; rolled back`,
      );
    }
    deletedKeys.push(...rows.map((r) => r.key));
    const gone = new Set(deletedKeys);
    const left = keys.flatMap((key, i) => (gone.has(key) ? [] : [i]));
    keys = left.map((i) => deletion.keys[i]!);
    fingerprints = left.map((i) => deletion.fingerprints[i]!);
  }
  let changed = 0;
  if (keys.length > 0) {
    const { rows } = await client.query<{ key: string }>(sql.deleteListed(), [keys, fingerprints]);
    deletedKeys.push(...rows.map((r) => r.key));
    const { rows: left } = await client.query<{ present: number }>(sql.countListed(), [keys]);
    changed = left[0]?.present ?? 0;
  }
  checkDeleted(sql.table, deletedKeys, deletion.keys);
  return { deletedKeys, changed };
}

/** The DELETE may only remove listed keys, each once. */
function checkDeleted(table: string, deleted: string[], listed: string[]): void {
  const allowed = new Set(listed);
  const seen = new Set<string>();
  for (const key of deleted) {
    if (!allowed.has(key) || seen.has(key)) {
      throw new DeleteMismatchError(
        `${table}: the delete removed ${allowed.has(key) ? `key ${key} twice` : `key ${key}, which its deletion manifest does not list`}; rolled back`,
      );
    }
    seen.add(key);
  }
}

function outcomeOf(receipt: DeletionReceipt): DeleteBatchResult {
  const { listed, deleted, changed, alreadyGone } = receipt;
  return { listed, deleted, changed, alreadyGone };
}
