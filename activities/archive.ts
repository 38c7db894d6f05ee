import { cancellationSignal, log } from '@temporalio/activity';
import { readOldestRow } from '../src/archive/backlog';
import { deleteBatch } from '../src/archive/delete-batch';
import { exportBatch, findBatchDay } from '../src/archive/export';
import { estimateArchive } from '../src/archive/estimate';
import { verifyBatch } from '../src/archive/verify';
import { advanceWatermark } from '../src/archive/watermark';
import { legalHoldOn } from '../src/archive/legal-holds';
import { stopwatch } from '../src/metrics';
import { dayOfKey } from '../src/store/layout';
import type {
  BatchStart,
  FindBatchInput,
  ArchiveEstimate,
  DeleteBatchInput,
  DeletedBatch,
  EstimateInput,
  ExportBatchInput,
  ExportBatchResult,
  VerifyBatchInput,
  VerifyBatchResult,
} from '../src/shared/archive-types';
import { recordAudit } from './audit';
import { requireSchema, withTable } from './context';
import type { ActivityDeps } from './deps';
import { heartbeating, workflowIdOfActivity } from './heartbeat';
import { readThrottle } from './throttle';

/** A read for a metric alone never fails the activity: the gauge keeps its last value. */
export function metricReadFailed(err: unknown): undefined {
  log.warn('could not read the table for its backlog metrics', { err });
  return undefined;
}

export function archiveActivities(deps: ActivityDeps) {
  return {
    /**
     * Where the next batch starts (src/archive/export.ts findBatchDay), or null when no
     * eligible row is left: found before the export, so that the run records it and every
     * attempt of the batch writes the same object. Reads only.
     */
    findBatch(input: FindBatchInput): Promise<BatchStart | null> {
      return withTable(
        deps,
        input.table,
        async (ctx, client) =>
          (await findBatchDay({ client, sql: ctx.sql }, input.cutoff, input.cursor, input.holds)) ??
          null,
      );
    },

    /**
     * Exports the batch from its recorded start to a deterministic object with its manifest
     * beside it (src/archive/export.ts). Idempotent, and safe when attempts overlap: it never
     * deletes or replaces an object, it adopts what an earlier attempt stored.
     */
    exportBatch(input: ExportBatchInput): Promise<ExportBatchResult> {
      const elapsed = stopwatch();
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
              compressionLevel: ctx.table.compressionLevel,
              workflowId: workflowIdOfActivity(),
              signal: cancellationSignal(),
              onProgress: (rows) => details({ batch: input.batch, rows }),
            },
            input,
          );
          if (result.kind === 'batch') {
            log.info('batch exported', { object: result.object, rows: result.rowCount });
            deps.metrics?.exported(
              input.table,
              { rows: result.rowCount, bytes: result.bytes },
              elapsed(),
            );
          }
          return result;
        }),
      );
    },

    /** Reads the batch back from the store and writes its deletion manifest (src/archive/verify.ts). */
    verifyBatch(input: VerifyBatchInput): Promise<VerifyBatchResult> {
      return heartbeating(async (details) => {
        const elapsed = stopwatch();
        const verified = await verifyBatch(deps.store.table(input.table), input.object, {
          signal: cancellationSignal(),
          progress: (rows) => details({ rows }),
        });
        await recordAudit(deps, 'archive', `archive:${input.object}`, input.table, {
          object: input.object,
          ...verified,
        });
        deps.metrics?.verified(input.table, elapsed());
        return verified;
      });
    },

    /**
     * Deletes the batch's rows that are still as archived, in one transaction, while the
     * run holds the table's lock, and records the keys it deleted (src/archive/delete-batch.ts);
     * then moves the table's watermark forward (src/archive/watermark.ts), never backwards,
     * and reads the load signals the next batch is paced by. Idempotent, and safe when
     * attempts overlap.
     */
    deleteBatch(input: DeleteBatchInput): Promise<DeletedBatch> {
      return heartbeating(async () => {
        const elapsed = stopwatch();
        const result = await withTable(deps, input.table, async (ctx, client) => {
          const deleted = await deleteBatch(
            {
              client,
              archive: ctx.archive,
              sql: ctx.sql,
              schemaHash: ctx.schemaHash,
              workflowId: workflowIdOfActivity(),
              signal: cancellationSignal(),
              legalHoldOn: async (object) =>
                (await legalHoldOn(ctx.archive, ctx.table.legalHold, dayOfKey(object)!))?.id,
            },
            input,
          );
          log.info(deleted.heldBy ? 'batch kept by a legal hold' : 'batch deleted', {
            object: input.object,
            ...deleted,
          });
          // The backlog gauge's oldest row: one more probe of the timestamp index per batch.
          if (deps.metrics) {
            const oldest = await readOldestRow(client, ctx.sql).catch(metricReadFailed);
            if (oldest !== undefined) deps.metrics.oldestRow(input.table, oldest);
          }
          return deleted;
        });
        const action = result.heldBy ? 'legal-hold-skip' : 'delete';
        await recordAudit(deps, action, `${action}:${input.object}`, input.table, {
          object: input.object,
          ...result,
        });
        await advanceWatermark(deps.store.table(input.table), input.table, input.watermark);
        deps.metrics?.deleted(input.table, result.deleted, elapsed());
        return { ...result, reading: await readThrottle(deps, input.table) };
      });
    },

    /** Dry run: what would be archived (src/archive/estimate.ts). Reads only. */
    estimateArchive(input: EstimateInput): Promise<ArchiveEstimate> {
      return withTable(deps, input.table, (ctx, client) =>
        estimateArchive(client, ctx.sql, input.cutoff),
      );
    },
  };
}
