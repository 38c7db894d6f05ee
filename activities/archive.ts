import { gzipSync } from 'node:zlib';
import { activityInfo, cancellationSignal, heartbeat, log } from '@temporalio/activity';
import type { PoolClient } from 'pg';
import { streamBatchToStore } from '../src/archive/export';
import { listKeys } from '../src/archive/catalog';
import {
  dataObjectKey,
  deletionManifestKey,
  deletionReceiptKey,
  holdsPrefix,
  manifestKey,
  schemaSnapshotKey,
  watermarkKey,
} from '../src/archive/layout';
import {
  DELETION_MANIFEST_FORMAT,
  DELETION_RECEIPT_FORMAT,
  OBJECT_MANIFEST_FORMAT,
  WATERMARK_FORMAT,
  type DeletionManifest,
  type DeletionReceipt,
  type ObjectManifest,
  type Watermark,
} from '../src/archive/manifests';
import { lineFingerprint, readBackVerified } from '../src/archive/read-back';
import { deleteObject, putObjectJson } from '../src/s3/objects';
import { selectTables, findTable, type TableFilter } from '../src/config';
import type {
  AdvanceWatermarkInput,
  ArchiveEstimate,
  BatchObjectInput,
  DeleteBatchInput,
  DeleteBatchResult,
  DeletionManifestResult,
  EstimateInput,
  ExportBatchInput,
  ExportBatchResult,
  TablePlan,
  VerifyBatchInput,
  VerifyBatchResult,
} from '../src/shared/archive-types';
import { DeleteMismatchError, LockLostError, VerificationError } from '../src/shared/errors';
import type { RunPlan } from '../src/shared/run-types';
import { resolveTableRef, type TableRef } from '../src/shared/table-ref';
import type { ActivityDeps } from './deps';
import { loadTableContext, requireSchema, withClient, type TableContext } from './table-context';
import { LOCK_CLASS_ID } from './lock';
import { readJson, writeOnce } from './s3-json';

/** The day after a YYYY-MM-DD day. */
function nextDate(day: string): string {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + 1);
  return date.toISOString().slice(0, 10);
}

function workflowIdOfActivity(): string {
  const info = activityInfo();
  return info.workflowExecution?.workflowId ?? `activity ${info.activityId}`;
}

/** Held day ranges of a table (see the restore's holdDays): the archive leaves them alone. */
async function heldDays(
  deps: ActivityDeps,
  ctx: TableContext,
): Promise<{ firstDay: string; lastDay: string }[]> {
  const keys = await listKeys(deps.s3, deps.config.s3.bucket, holdsPrefix(ctx.location));
  const holds = await Promise.all(
    [...keys.keys()].map((key) =>
      readJson<{ firstDay: string; lastDay: string }>(deps.s3, deps.config.s3.bucket, key),
    ),
  );
  return holds.filter((h): h is { firstDay: string; lastDay: string } => h !== undefined);
}

async function findBatchDay(
  client: PoolClient,
  ctx: TableContext,
  input: ExportBatchInput,
  holds: { firstDay: string; lastDay: string }[],
): Promise<{ day: string; afterKey: string | null } | undefined> {
  let { day, afterKey } = input.cursor;
  if (afterKey === null) day = await oldestDayFrom(client, ctx, input.cutoff, day);
  while (day !== null) {
    const current = day;
    const hold = holds.find((h) => h.firstDay <= current && current <= h.lastDay);
    if (hold) {
      day = await oldestDayFrom(client, ctx, input.cutoff, nextDate(hold.lastDay));
      afterKey = null;
      continue;
    }
    const { rows } = await client.query<{ found: boolean }>(
      `select exists (
         select 1 from ${ctx.sql.table} as t
          where t.${ctx.sql.ts} >= ${ctx.sql.instant('$1')}
            and t.${ctx.sql.ts} < ${ctx.sql.instant('$2')}
            and t.${ctx.sql.ts} < ${ctx.sql.instant('$3')}
            and ($4::text is null or t.${ctx.sql.pk} > $4::text::${ctx.sql.pkType})
       ) as found`,
      [`${day}T00:00:00Z`, `${nextDate(day)}T00:00:00Z`, input.cutoff, afterKey],
    );
    if (rows[0]?.found) return { day, afterKey };
    day = await oldestDayFrom(client, ctx, input.cutoff, nextDate(day));
    afterKey = null;
  }
  return undefined;
}

async function oldestDayFrom(
  client: PoolClient,
  ctx: TableContext,
  cutoff: string,
  from: string | null,
): Promise<string | null> {
  const { rows } = await client.query<{ day: string | null }>(ctx.sql.nextDay(), [
    cutoff,
    from === null ? null : `${from}T00:00:00Z`,
  ]);
  return rows[0]?.day ?? null;
}

export function archiveActivities(deps: ActivityDeps) {
  const { config, s3 } = deps;
  const bucket = config.s3.bucket;

  const readManifest = async (object: string): Promise<ObjectManifest> => {
    const manifest = await readJson<ObjectManifest>(s3, bucket, manifestKey(object));
    if (!manifest) {
      throw new VerificationError(`s3://${bucket}/${manifestKey(object)}: manifest is missing`, {
        object,
      });
    }
    return manifest;
  };

  /**
   * Writes the exact keys (and a fingerprint of each archived line) that the delete may
   * remove, derived from the object as read back from the store and verified on the way,
   * never from memory. Idempotent: the manifest is written once, after a complete
   * verification; a retry accepts the one that is there.
   */
  async function writeDeletionManifestFromStore(
    object: string,
    manifest: ObjectManifest,
  ): Promise<DeletionManifestResult> {
    const key = deletionManifestKey(object);
    const existing = await readJson<DeletionManifest>(s3, bucket, key);
    if (existing && existing.objectSha256 === manifest.sha256) {
      return { deletionManifest: key, rowCount: existing.rowCount };
    }
    const keys: string[] = [];
    const fingerprints: string[] = [];
    await readBackVerified(s3, bucket, manifest, {
      signal: cancellationSignal(),
      onRow: (row) => {
        keys.push(row.key);
        fingerprints.push(lineFingerprint(row.line));
        if (keys.length % 10_000 === 0) heartbeat({ rows: keys.length });
      },
    });
    const doc: DeletionManifest = {
      format: DELETION_MANIFEST_FORMAT,
      object,
      objectSha256: manifest.sha256,
      rowCount: keys.length,
      keyColumn: manifest.primaryKey.column,
      fingerprint: 'md5(line)',
      keys,
      fingerprints,
      createdAt: new Date().toISOString(),
    };
    await writeOnce(s3, bucket, key, doc, (found) => found.objectSha256 === manifest.sha256);
    return { deletionManifest: key, rowCount: keys.length };
  }

  /** The body of deleteBatch (below), which heartbeats around it. */
  async function deleteBatchOnce(input: DeleteBatchInput): Promise<DeleteBatchResult> {
    const receiptKey = deletionReceiptKey(input.object);
    // Three small reads at once; the receipt, if there, makes the other two moot.
    const [receipt, manifest, deletion] = await Promise.all([
      readJson<DeletionReceipt>(s3, bucket, receiptKey),
      readManifest(input.object).catch((err: unknown) => err as Error),
      readJson<DeletionManifest>(s3, bucket, deletionManifestKey(input.object)),
    ]);
    if (receipt) {
      const { listed, deleted, changed, alreadyGone } = receipt;
      return { listed, deleted, changed, alreadyGone };
    }
    if (manifest instanceof Error) throw manifest;
    if (
      !deletion ||
      deletion.objectSha256 !== manifest.sha256 ||
      deletion.keys.length !== manifest.rowCount
    ) {
      throw new VerificationError(
        `s3://${bucket}/${deletionManifestKey(input.object)}: missing or does not match its object`,
        {
          object: input.object,
        },
      );
    }
    const result = await withClient(deps, input.table.database, async (client) => {
      const ctx = await loadTableContext(deps, input.table, client);
      requireSchema(ctx, manifest.schemaHash);
      await client.query('begin');
      try {
        const { rows: held } = await client.query<{ held: boolean }>(
          `select exists (
             select 1
               from pg_catalog.pg_locks l
               join pg_catalog.pg_stat_activity a on a.pid = l.pid
              where l.locktype = 'advisory' and l.granted and l.objsubid = 2
                and l.classid = $1::int::oid
                and l.objid = to_regclass($2::text)::oid
                and l.pid = $3::int
                and a.backend_start = $4::timestamptz
           ) as held`,
          [LOCK_CLASS_ID, ctx.sql.table, input.lock.pid, input.lock.backendStart],
        );
        if (!held[0]?.held) {
          throw new LockLostError(
            `${ctx.sql.table}: this run no longer holds the table's lock; nothing was deleted`,
          );
        }
        const before = await count(client, ctx, deletion.keys);
        const { rows } = await client.query<{ deleted: number }>(ctx.sql.deleteListed(), [
          deletion.keys,
          deletion.fingerprints,
        ]);
        const deleted = rows[0]?.deleted ?? 0;
        const after = await count(client, ctx, deletion.keys);
        if (deleted !== before - after || deleted > deletion.keys.length) {
          throw new DeleteMismatchError(
            `${ctx.sql.table}: the delete removed ${deleted} rows where ${before - after} of the ${deletion.keys.length} listed disappeared; rolled back`,
          );
        }
        await client.query('commit');
        return {
          listed: deletion.keys.length,
          deleted,
          changed: after,
          alreadyGone: deletion.keys.length - before,
        };
      } catch (err) {
        await client.query('rollback').catch(() => undefined);
        throw err;
      }
    });
    const doc: DeletionReceipt = {
      format: DELETION_RECEIPT_FORMAT,
      object: input.object,
      ...result,
      workflowId: workflowIdOfActivity(),
      deletedAt: new Date().toISOString(),
    };
    await writeOnce(s3, bucket, receiptKey, doc, () => true);
    log.info('batch deleted', { object: input.object, ...result });
    return result;
  }

  return {
    /** The settings of a configured table that the workflow paces itself by. */
    planTable(input: TableRef): Promise<TablePlan> {
      const ref = resolveTableRef(input);
      const table = findTable(config, ref);
      return Promise.resolve({
        table: ref,
        retentionDays: table.retentionDays,
        batchSize: table.batchSize,
        pauseBetweenBatchesMs: table.pauseBetweenBatchesMs,
      });
    },

    /** The configured tables a run covers, and its parallelism; a filter that matches nothing is an error. */
    planRun(filter: TableFilter): Promise<RunPlan> {
      return Promise.resolve({
        tables: selectTables(config, filter).map((t) => ({
          database: t.database.name,
          schema: t.schema,
          table: t.name,
        })),
        limits: {
          maxParallelTables: config.archive.max_parallel_tables,
          maxParallelDatabases: config.archive.max_parallel_databases,
          maxParallelTablesPerDatabase: config.archive.max_parallel_tables_per_database,
        },
      });
    },

    /**
     * Exports the next batch after the cursor (rows of one UTC day older than the cutoff, in
     * key order) to a deterministic object with its manifest beside it. Idempotent: a retry
     * whose earlier attempt left a manifest returns that attempt's result; one that left only
     * a data object overwrites it (nothing refers to an object without a manifest).
     */
    async exportBatch(input: ExportBatchInput): Promise<ExportBatchResult> {
      return withClient(deps, input.table.database, async (client) => {
        const ctx = await loadTableContext(deps, input.table, client);
        requireSchema(ctx, input.schemaHash);
        const holds = await heldDays(deps, ctx);
        const found = await findBatchDay(client, ctx, input, holds);
        if (!found) return { kind: 'done' };
        const limit = Math.min(input.batchSize ?? ctx.table.batchSize, ctx.table.batchSize);

        const object = dataObjectKey(ctx.location, found.day, input.run, input.batch);
        let manifest = await readJson<ObjectManifest>(s3, bucket, manifestKey(object));
        if (!manifest) {
          // No manifest means nothing refers to whatever an earlier attempt left at this key:
          // clear it, so the conditional upload below can write the batch afresh.
          await deleteObject(s3, bucket, object);
          const stats = await streamBatchToStore({
            client,
            copySql: ctx.sql.exportCopy({
              cutoff: input.cutoff,
              dayStart: `${found.day}T00:00:00Z`,
              dayEnd: `${nextDate(found.day)}T00:00:00Z`,
              afterKey: found.afterKey,
              limit,
            }),
            s3,
            bucket,
            key: object,
            storageClass: config.s3.storage_class,
            signal: cancellationSignal(),
            onProgress: (rows) => heartbeat({ object, rows }),
          });
          const doc: ObjectManifest = {
            format: OBJECT_MANIFEST_FORMAT,
            object,
            database: input.table.database,
            schema: input.table.schema,
            table: input.table.table,
            schemaHash: ctx.schemaHash,
            schemaKey: schemaSnapshotKey(ctx.location, ctx.schemaHash),
            day: found.day,
            rowCount: stats.rowCount,
            primaryKey: {
              column: ctx.table.primaryKey,
              first: stats.firstKey,
              last: stats.lastKey,
            },
            timestamp: {
              column: ctx.table.timestampColumn,
              min: stats.minTimestamp,
              max: stats.maxTimestamp,
              maxMicros: stats.maxTimestampMicros,
            },
            sha256: stats.sha256,
            bytes: stats.bytes,
            encoding: 'jsonl+gzip',
            cutoff: input.cutoff,
            workflowId: workflowIdOfActivity(),
            run: input.run,
            batch: input.batch,
            createdAt: new Date().toISOString(),
          };
          // A concurrent attempt of the same batch may have won; its manifest then stands.
          manifest = await writeOnce(s3, bucket, manifestKey(object), doc, () => true);
          log.info('batch exported', { object, rows: stats.rowCount, bytes: stats.bytes });
        }
        const dayComplete = manifest.rowCount < limit;
        const next = dayComplete
          ? { day: nextDate(found.day), afterKey: null }
          : { day: found.day, afterKey: manifest.primaryKey.last };
        const more =
          (await findBatchDay(client, ctx, { ...input, cursor: next }, holds)) !== undefined;
        return {
          kind: 'batch',
          object,
          manifest: manifestKey(object),
          day: found.day,
          rowCount: manifest.rowCount,
          bytes: manifest.bytes,
          firstKey: manifest.primaryKey.first,
          lastKey: manifest.primaryKey.last,
          maxTimestamp: manifest.timestamp.max,
          maxTimestampMicros: manifest.timestamp.maxMicros,
          next,
          more,
        };
      });
    },

    /**
     * Reads the stored object back from the store and checks it against its manifest
     * (SHA-256, decompression, every line, row count, key range). Changes nothing, unless
     * asked to write the deletion manifest from the same read-back.
     */
    async verifyBatch(input: VerifyBatchInput): Promise<VerifyBatchResult> {
      const manifest = await readManifest(input.object);
      if (input.writeDeletionManifest) {
        const { deletionManifest } = await writeDeletionManifestFromStore(input.object, manifest);
        return { rowCount: manifest.rowCount, sha256: manifest.sha256, deletionManifest };
      }
      let rows = 0;
      await readBackVerified(s3, bucket, manifest, {
        signal: cancellationSignal(),
        onRow: () => {
          if (++rows % 10_000 === 0) heartbeat({ rows });
        },
      });
      return { rowCount: manifest.rowCount, sha256: manifest.sha256 };
    },

    /** See writeDeletionManifestFromStore; called by runs from before 'lean-batch-v1'. */
    async writeDeletionManifest(input: BatchObjectInput): Promise<DeletionManifestResult> {
      return writeDeletionManifestFromStore(input.object, await readManifest(input.object));
    },

    /**
     * Deletes, in one transaction, the rows of the deletion manifest whose current content
     * still matches the archived line, while this run holds the table's lock. Any count that
     * does not add up rolls the transaction back. Idempotent: a retry after a commit whose
     * reply was lost finds the receipt (or finds the rows gone) and deletes nothing else.
     */
    async deleteBatch(input: DeleteBatchInput): Promise<DeleteBatchResult> {
      const beat = setInterval(() => heartbeat(), 2_000);
      try {
        return await deleteBatchOnce(input);
      } finally {
        clearInterval(beat);
      }
    },

    /** Moves the table's watermark to the batch's newest timestamp; never backwards. */
    async advanceWatermark(input: AdvanceWatermarkInput): Promise<{ moved: boolean }> {
      const key = watermarkKey({ prefix: config.s3.prefix, ...input.table });
      const current = await readJson<Watermark>(s3, bucket, key);
      if (current && BigInt(current.archivedThroughMicros) >= BigInt(input.maxTimestampMicros)) {
        return { moved: false };
      }
      const doc: Watermark = {
        format: WATERMARK_FORMAT,
        ...input.table,
        archivedThrough: input.maxTimestamp,
        archivedThroughMicros: input.maxTimestampMicros,
        lastRun: input.run,
        lastCutoff: input.cutoff,
        updatedAt: new Date().toISOString(),
      };
      // One writer per table (the lock), so a plain overwrite cannot lose a newer value.
      await putObjectJson(s3, bucket, key, doc);
      return { moved: true };
    },

    /**
     * Dry run: how many rows are older than the cutoff, their days and date range, and an
     * estimated compressed size from a gzip of a sample. Reads only; writes nothing.
     */
    async estimateArchive(input: EstimateInput): Promise<ArchiveEstimate> {
      return withClient(deps, input.table.database, async (client) => {
        const ctx = await loadTableContext(deps, input.table, client);
        const { rows: days } = await client.query<{
          day: string;
          rows: string;
          first: string;
          last: string;
        }>(ctx.sql.eligibleByDay(), [input.cutoff]);
        const { rows: sample } = await client.query<{ line: string }>(ctx.sql.sampleRows(), [
          input.cutoff,
          2000,
        ]);
        const sampleText = sample.map((r) => `${r.line}\n`).join('');
        const bytesPerRow = sample.length === 0 ? 0 : gzipSync(sampleText).length / sample.length;
        const rows = days.reduce((sum, d) => sum + Number(d.rows), 0);
        return {
          rows,
          firstTimestamp: days[0]?.first ?? null,
          lastTimestamp: days.at(-1)?.last ?? null,
          days: days.map((d) => ({ day: d.day, rows: Number(d.rows) })),
          estimatedBytes: Math.round(bytesPerRow * rows),
        };
      });
    },
  };
}

async function count(client: PoolClient, ctx: TableContext, keys: string[]): Promise<number> {
  const { rows } = await client.query<{ present: number }>(ctx.sql.countListed(), [keys]);
  return rows[0]?.present ?? 0;
}
