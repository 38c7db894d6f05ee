import { activityInfo, cancellationSignal, heartbeat, log } from '@temporalio/activity';
import { from as copyFrom } from 'pg-copy-streams';
import { listArchive, listKeys } from '../src/archive/catalog';
import {
  dayOfKey,
  holdsPrefix,
  manifestKey,
  restoreReceiptKey,
  restoreReceiptsPrefix,
  type TableLocation,
} from '../src/archive/layout';
import type { ObjectManifest } from '../src/archive/manifests';
import { lineFingerprint, readBackVerified } from '../src/archive/read-back';
import type { SchemaSnapshot } from '../src/archive/schema-snapshot';
import { TableSql } from '../src/archive/table-sql';
import { findTable } from '../src/config';
import { inspectTable } from '../src/postgres/inspect';
import { putObjectJson } from '../src/s3/objects';
import { describeColumnPlan, planColumns } from '../src/restore/column-plan';
import { copyLine, RestoreSql } from '../src/restore/restore-sql';
import {
  RestoreRefusedError,
  TableNotFoundError,
  TableShapeError,
  VerificationError,
} from '../src/shared/errors';
import type {
  ColumnPlan,
  PlannedObject,
  PlanRestoreInput,
  RestoreObjectInput,
  RestoreObjectResult,
  RestorePlan,
  RestoreTarget,
} from '../src/shared/restore-types';
import type { ResolvedTableRef } from '../src/shared/table-ref';
import type { ActivityDeps } from './deps';
import { readJson } from './s3-json';
import { withClient } from './table-context';

/** Maps `items` through `fn`, at most `limit` at a time, keeping their order. */
async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) results[i] = await fn(items[i]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** A restore receipt: the restore watermark of one object in one target. */
interface RestoreReceipt extends RestoreObjectResult {
  target: RestoreTarget;
  conflict: string;
  restoredAt: string;
  workflowId: string;
}

/** Days of a table the archive leaves alone, e.g. rows a restore brought back. */
export interface Hold {
  reason: string;
  firstDay: string;
  lastDay: string;
  createdAt: string;
  workflowId: string;
}

export function restoreActivities(deps: ActivityDeps) {
  const { config, s3 } = deps;
  const bucket = config.s3.bucket;
  const location = (ref: ResolvedTableRef | RestoreTarget): TableLocation => ({
    prefix: config.s3.prefix,
    ...ref,
  });

  /** The target table's columns and key as they are now; the target must be configured's database. */
  async function targetShape(target: RestoreTarget, keyColumn: string) {
    const db = config.databases.find((d) => d.name === target.database);
    if (!db) throw new TableNotFoundError(`database "${target.database}" is not in the config`);
    return withClient(deps, target.database, async (client) => {
      const resolved = { ...findTableOrAdHoc(target), database: db };
      const inspection = await inspectTable(client, { ...resolved, primaryKey: keyColumn });
      if (!inspection.found) {
        throw new TableNotFoundError(
          `${target.database}: ${target.schema}.${target.table}: target table does not exist`,
        );
      }
      const key = inspection.columns.find((c) => c.name === keyColumn);
      if (!key) {
        throw new TableShapeError(
          `${target.database}: ${target.schema}.${target.table}: has no column "${keyColumn}" (the archive's key)`,
        );
      }
      return {
        columns: inspection.columns,
        keyType: key.type,
        keyIsUnique: inspection.keyColumn.ok,
      };
    });
  }

  /** The configured table, or (for a side-by-side restore) a table the config does not list. */
  function findTableOrAdHoc(target: RestoreTarget) {
    try {
      return findTable(config, target);
    } catch {
      const db = config.databases.find((d) => d.name === target.database)!;
      return {
        database: db,
        schema: target.schema,
        name: target.table,
        timestampColumn: '',
        primaryKey: '',
        retentionDays: 0,
        batchSize: 0,
        pauseBetweenBatchesMs: 0,
      };
    }
  }

  async function readSnapshot(key: string): Promise<SchemaSnapshot> {
    const snapshot = await readJson<SchemaSnapshot>(s3, bucket, key);
    if (!snapshot)
      throw new VerificationError(`s3://${bucket}/${key}: schema snapshot is missing`, { key });
    return snapshot;
  }

  return {
    /**
     * Lists what a restore would write and how: the objects (skipping those the restore
     * watermark says are in this target already), and for each archived schema how its
     * columns map onto the target. Refuses when archived columns would be lost. Reads only.
     */
    async planRestore(input: PlanRestoreInput): Promise<RestorePlan> {
      const at = location(input.source);
      const listed = await listArchive(s3, bucket, at, {
        startDate: input.startDate,
        endDate: input.endDate,
      });
      const wanted = input.objects ? new Set(input.objects) : undefined;
      if (wanted) {
        const known = new Set(listed.map((o) => o.object));
        const unknown = [...wanted].filter((k) => !known.has(k));
        if (unknown.length > 0) {
          throw new RestoreRefusedError(
            `not an archived object of ${input.source.database} ${input.source.schema}.${input.source.table}: ${unknown.join(', ')}`,
          );
        }
      }
      const restored = await listKeys(
        s3,
        bucket,
        restoreReceiptsPrefix(at, location(input.target)),
      );
      const selected = listed.filter((l) => !wanted || wanted.has(l.object));
      const manifests = await mapLimit(selected, 16, async (o) => {
        const manifest = await readJson<ObjectManifest>(s3, bucket, manifestKey(o.object));
        if (!manifest) {
          throw new VerificationError(
            `s3://${bucket}/${manifestKey(o.object)}: manifest is missing; the object cannot be restored`,
            {
              object: o.object,
            },
          );
        }
        return manifest;
      });
      heartbeat({ planned: manifests.length });
      const objects: PlannedObject[] = selected.map((o, i) => ({
        object: o.object,
        day: o.day,
        rows: manifests[i]!.rowCount,
        bytes: manifests[i]!.bytes,
        schemaHash: manifests[i]!.schemaHash,
        restored: restored.has(restoreReceiptKey(at, location(input.target), o.object)),
      }));
      const snapshots = new Map<string, SchemaSnapshot>();
      for (const manifest of manifests) {
        if (!snapshots.has(manifest.schemaHash))
          snapshots.set(manifest.schemaHash, await readSnapshot(manifest.schemaKey));
      }
      const keyColumn =
        [...snapshots.values()][0]?.archiveKey ?? findTable(config, input.source).primaryKey;
      const target = await targetShape(input.target, keyColumn);
      const columnPlans: ColumnPlan[] = [...snapshots.values()].map((s) =>
        planColumns(s, target.columns),
      );
      const toRestore = objects
        .filter((o) => input.ignoreWatermark || !o.restored)
        .map((o) => o.object);
      const decision = [
        `restore into ${input.target.database} ${input.target.schema}.${input.target.table}: ${toRestore.length} of ${objects.length} objects, ${objects
          .filter((o) => toRestore.includes(o.object))
          .reduce(
            (n, o) => n + o.rows,
            0,
          )} rows${objects.length > toRestore.length ? ` (${objects.length - toRestore.length} already restored there; --ignore-watermark restores them again)` : ''}`,
        ...columnPlans.flatMap((p) => describeColumnPlan(p, input.dropMissingColumns)),
      ];
      const refused = columnPlans.filter((p) => p.missing.length > 0);
      if (refused.length > 0 && !input.dropMissingColumns) {
        throw new RestoreRefusedError(
          `${input.target.database} ${input.target.schema}.${input.target.table} lacks archived columns ${[...new Set(refused.flatMap((p) => p.missing))].join(', ')}; nothing was written (add the columns, or restore with --drop-missing-columns to leave them out)`,
        );
      }
      return {
        source: input.source,
        target: input.target,
        objects,
        toRestore,
        columnPlans,
        decision,
      };
    },

    /**
     * Restores one archived object into the target in one transaction: its lines are read
     * back from the store and checked against the manifest as they stream into COPY, then
     * written by the conflict strategy; a failed check or a refused conflict rolls the whole
     * object back. Idempotent: rows already present exactly as archived count as identical.
     */
    async restoreObject(input: RestoreObjectInput): Promise<RestoreObjectResult> {
      const manifest = await readJson<ObjectManifest>(s3, bucket, manifestKey(input.object));
      if (!manifest)
        throw new VerificationError(
          `s3://${bucket}/${manifestKey(input.object)}: manifest is missing`,
          { object: input.object },
        );
      const snapshot = await readSnapshot(manifest.schemaKey);
      const target = await targetShape(input.target, manifest.primaryKey.column);
      const plan = planColumns(snapshot, target.columns);
      if (plan.missing.length > 0 && !input.dropMissingColumns) {
        throw new RestoreRefusedError(`target lacks archived columns ${plan.missing.join(', ')}`);
      }
      if (input.conflict === 'overwrite' && !target.keyIsUnique) {
        throw new RestoreRefusedError(
          `overwrite needs a unique index on "${manifest.primaryKey.column}" in the target`,
        );
      }
      const targetSql = new TableSql({
        schema: input.target.schema,
        name: input.target.table,
        timestampColumn: manifest.timestamp.column,
        primaryKey: manifest.primaryKey.column,
        columns: target.columns,
      });
      const sql = new RestoreSql({
        schema: input.target.schema,
        table: input.target.table,
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
      const result = await withClient(deps, input.target.database, async (client) => {
        await client.query('begin');
        try {
          await client.query(sql.createStaging());
          let rows = 0;
          const columns = sql.columns;
          await readBackVerified(s3, bucket, manifest, {
            signal: cancellationSignal(),
            sink: client.query(copyFrom(sql.copyIn())),
            toSink: (line, row) => copyLine(row, columns, lineFingerprint(line)),
            onRow: () => {
              if (++rows % 10_000 === 0) heartbeat({ rows });
            },
          });
          const { rows: found } = await client.query<{
            identical: number;
            conflicting: number;
            staged: number;
          }>(sql.existing());
          const { identical, conflicting, staged } = found[0]!;
          if (staged !== manifest.rowCount) {
            throw new VerificationError(
              `${input.object}: staged ${staged} rows, the manifest says ${manifest.rowCount}`,
            );
          }
          if (input.conflict === 'fail' && conflicting > 0) {
            throw new RestoreRefusedError(
              `${input.object}: ${conflicting} archived rows have keys that exist in ${input.target.schema}.${input.target.table} with other content; nothing of this object was written (conflict strategy fail)`,
            );
          }
          const { rows: written } = await client.query<{ inserted: boolean }>(
            sql.write(input.conflict),
          );
          const inserted = written.filter((w) => w.inserted).length;
          const overwritten = written.length - inserted;
          const skipped = input.conflict === 'skip' ? conflicting : 0;
          if (inserted + overwritten + skipped + identical !== manifest.rowCount) {
            throw new VerificationError(
              `${input.object}: wrote ${inserted + overwritten}, skipped ${skipped}, found ${identical} identical of ${manifest.rowCount} rows; rolled back`,
            );
          }
          await client.query('commit');
          return {
            object: input.object,
            rows: manifest.rowCount,
            inserted,
            overwritten,
            skipped,
            identical,
          };
        } catch (err) {
          await client.query('rollback').catch(() => undefined);
          throw err;
        }
      });
      const receipt: RestoreReceipt = {
        ...result,
        target: input.target,
        conflict: input.conflict,
        restoredAt: new Date().toISOString(),
        workflowId: activityInfo().workflowExecution?.workflowId ?? 'unknown',
      };
      await putObjectJson(
        s3,
        bucket,
        restoreReceiptKey(location(input.source), location(input.target), input.object),
        receipt,
      );
      log.info('object restored', { ...result });
      return result;
    },

    /**
     * Holds the restored days of a table: the archive leaves rows of held days where they are,
     * so restored rows are not archived a second time as new copies. Released with
     * `audit-archiver restore --release-holds`.
     */
    async holdDays(input: {
      table: ResolvedTableRef;
      objects: string[];
      reason: string;
    }): Promise<string | null> {
      const days = input.objects
        .map((o) => dayOfKey(o))
        .filter((d): d is string => d !== undefined)
        .sort();
      if (days.length === 0) return null;
      const workflowId = activityInfo().workflowExecution?.workflowId ?? 'unknown';
      const key = `${holdsPrefix(location(input.table))}${workflowId.replace(/[^A-Za-z0-9._-]/g, '_')}.json`;
      const hold: Hold = {
        reason: input.reason,
        firstDay: days[0]!,
        lastDay: days.at(-1)!,
        createdAt: new Date().toISOString(),
        workflowId,
      };
      await putObjectJson(s3, bucket, key, hold);
      return key;
    },
  };
}
