import { gzipSync } from 'node:zlib';
import { cancellationSignal, log } from '@temporalio/activity';
import { deleteBatch } from '../src/archive/delete-batch';
import { exportBatch } from '../src/archive/export';
import { lineFingerprint, readBackVerified } from '../src/archive/read-back';
import { findTable, selectTables, type TableFilter } from '../src/config';
import type {
  AdvanceWatermarkInput,
  ArchiveEstimate,
  DeleteBatchInput,
  DeleteBatchResult,
  EstimateInput,
  ExportBatchInput,
  ExportBatchResult,
  SurveyTableInput,
  TablePlan,
  TableSurvey,
  VerifyBatchInput,
  VerifyBatchResult,
} from '../src/shared/archive-types';
import type { RunPlan } from '../src/shared/run-types';
import { resolveTableRef, type TableRef } from '../src/shared/table-ref';
import { DELETION_MANIFEST_FORMAT, WATERMARK_FORMAT } from '../src/store/documents';
import { mergeDays } from '../src/archive/days';
import { requireSchema, withTable } from './context';
import type { ActivityDeps } from './deps';
import { heartbeating, workflowIdOfActivity } from './heartbeat';

export function archiveActivities(deps: ActivityDeps) {
  const { config } = deps;

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
     * What a run reads once it holds the table's lock: the days restores hold (so that no
     * restore can add one unseen while the run deletes) and how many old rows it must leave
     * in the table. Reads only.
     */
    surveyTable(input: SurveyTableInput): Promise<TableSurvey> {
      return withTable(deps, input.table, async (ctx, client) => {
        const holds = await ctx.archive.holds();
        const { rows } = await client.query<{ null_key: number; out_of_range: number }>(
          ctx.sql.skippedRows(),
          [input.cutoff],
        );
        const skipped = { nullKey: rows[0]!.null_key, outOfRange: rows[0]!.out_of_range };
        if (skipped.nullKey + skipped.outOfRange > 0)
          log.warn('rows the archive leaves in the table', { table: ctx.sql.table, ...skipped });
        return { holds: mergeDays(holds.flatMap((h) => h.days)), skipped };
      });
    },

    /**
     * Exports the next batch after the cursor to a deterministic object with its manifest
     * beside it (src/archive/export.ts). Idempotent, and safe when attempts overlap: it never
     * deletes or replaces an object, it adopts what an earlier attempt stored.
     */
    exportBatch(input: ExportBatchInput): Promise<ExportBatchResult> {
      return heartbeating((details) =>
        withTable(deps, input.table, async (ctx, client) => {
          requireSchema(ctx, input.schemaHash);
          const result = await exportBatch(
            {
              client,
              archive: ctx.archive,
              sql: ctx.sql,
              table: {
                keyColumn: ctx.table.primaryKey,
                timestampColumn: ctx.table.timestampColumn,
                schemaHash: ctx.schemaHash,
                schemaKey: ctx.archive.schemaSnapshotKey(ctx.schemaHash),
              },
              batchSize: ctx.table.batchSize,
              workflowId: workflowIdOfActivity(),
              signal: cancellationSignal(),
              onProgress: (rows) => details({ batch: input.batch, rows }),
            },
            input,
          );
          if (result.kind === 'batch')
            log.info('batch exported', { object: result.object, rows: result.rowCount });
          return result;
        }),
      );
    },

    /**
     * Reads the stored object back from the store and checks it against its manifest
     * (SHA-256, decompression, every line, row count, key range), and writes, from that same
     * read-back, the deletion manifest: the exact keys (and a fingerprint of each archived
     * line) the delete may remove. Idempotent: the deletion manifest is written once; a retry
     * accepts the one there.
     */
    verifyBatch(input: VerifyBatchInput): Promise<VerifyBatchResult> {
      return heartbeating(async (details) => {
        const archive = deps.store.table(input.table);
        const manifest = await archive.requireManifest(input.object);
        const existing = await archive.deletionManifest(input.object);
        if (existing && existing.objectSha256 === manifest.sha256)
          return { rowCount: manifest.rowCount, sha256: manifest.sha256 };
        const keys: string[] = [];
        const fingerprints: string[] = [];
        await readBackVerified(archive, manifest, {
          signal: cancellationSignal(),
          onRow: (row) => {
            keys.push(row.key);
            fingerprints.push(lineFingerprint(row.line));
            if (keys.length % 10_000 === 0) details({ rows: keys.length });
          },
        });
        await archive.saveDeletionManifest({
          format: DELETION_MANIFEST_FORMAT,
          object: input.object,
          objectSha256: manifest.sha256,
          rowCount: keys.length,
          keyColumn: manifest.primaryKey.column,
          fingerprint: 'md5(line)',
          keys,
          fingerprints,
          createdAt: new Date().toISOString(),
        });
        return { rowCount: manifest.rowCount, sha256: manifest.sha256 };
      });
    },

    /**
     * Deletes the batch's rows that are still as archived, in one transaction, while the
     * run holds the table's lock, and records the keys it deleted (src/archive/delete-batch.ts).
     * Idempotent, and safe when attempts overlap.
     */
    deleteBatch(input: DeleteBatchInput): Promise<DeleteBatchResult> {
      return heartbeating(() =>
        withTable(deps, input.table, async (ctx, client) => {
          const result = await deleteBatch(
            {
              client,
              archive: ctx.archive,
              sql: ctx.sql,
              schemaHash: ctx.schemaHash,
              workflowId: workflowIdOfActivity(),
              signal: cancellationSignal(),
            },
            input,
          );
          log.info('batch deleted', { object: input.object, ...result });
          return result;
        }),
      );
    },

    /** Moves the table's watermark to the batch's newest timestamp; never backwards. */
    async advanceWatermark(input: AdvanceWatermarkInput): Promise<{ moved: boolean }> {
      const archive = deps.store.table(input.table);
      const current = await archive.watermark();
      if (current && BigInt(current.archivedThroughMicros) >= BigInt(input.maxTimestampMicros)) {
        return { moved: false };
      }
      await archive.saveWatermark({
        format: WATERMARK_FORMAT,
        ...input.table,
        archivedThrough: input.maxTimestamp,
        archivedThroughMicros: input.maxTimestampMicros,
        lastRun: input.run,
        lastCutoff: input.cutoff,
        updatedAt: new Date().toISOString(),
      });
      return { moved: true };
    },

    /**
     * Dry run: how many rows are older than the cutoff, their days and date range, and an
     * estimated compressed size from a gzip of a sample. Reads only; writes nothing.
     */
    estimateArchive(input: EstimateInput): Promise<ArchiveEstimate> {
      return withTable(deps, input.table, async (ctx, client) => {
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
