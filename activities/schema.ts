import { activityInfo, log } from '@temporalio/activity';
import { latestSchemaKey, schemaChangeKey, schemaSnapshotKey } from '../src/archive/layout';
import {
  SCHEMA_SNAPSHOT_FORMAT,
  type SchemaSnapshot,
  type SnapshotColumn,
} from '../src/archive/schema-snapshot';
import { putObjectJson } from '../src/s3/objects';
import { resolveTableRef } from '../src/shared/table-ref';
import type { SnapshotSchemaInput, SnapshotSchemaResult } from '../src/shared/workflow-types';
import type { ActivityDeps } from './deps';
import { readJson, writeOnce } from './s3-json';
import { loadTableContext, withClient } from './table-context';

/** Points at the newest schema snapshot of a table; rewritten only when the schema changes. */
interface LatestSchema {
  schemaHash: string;
  key: string;
  since: string;
}

/** What changed between two snapshots of a table, recorded under _schema/changes/. */
export interface SchemaChange {
  from: string;
  to: string;
  detectedAt: string;
  added: SnapshotColumn[];
  removed: SnapshotColumn[];
  changed: { name: string; from: SnapshotColumn; to: SnapshotColumn }[];
  primaryKey: { from: string[]; to: string[] } | null;
}

export function diffSchemas(
  before: SchemaSnapshot,
  after: SchemaSnapshot,
  at: string,
): SchemaChange {
  const byName = (cols: SnapshotColumn[]) => new Map(cols.map((c) => [c.name, c]));
  const old = byName(before.columns);
  const now = byName(after.columns);
  const same = (a: SnapshotColumn, b: SnapshotColumn) =>
    a.type === b.type && a.nullable === b.nullable;
  return {
    from: before.schemaHash,
    to: after.schemaHash,
    detectedAt: at,
    added: after.columns.filter((c) => !old.has(c.name)),
    removed: before.columns.filter((c) => !now.has(c.name)),
    changed: after.columns
      .filter((c) => old.has(c.name) && !same(old.get(c.name)!, c))
      .map((c) => ({ name: c.name, from: old.get(c.name)!, to: c })),
    primaryKey:
      before.primaryKey.join(',') === after.primaryKey.join(',')
        ? null
        : { from: before.primaryKey, to: after.primaryKey },
  };
}

export function schemaActivities(deps: ActivityDeps) {
  const { config, s3 } = deps;
  const bucket = config.s3.bucket;
  return {
    /**
     * Reads the table's columns, types and keys from the catalog and stores them in the bucket
     * as a content-addressed snapshot; when they differ from the table's latest snapshot, also
     * records what changed. Idempotent: the key is the schema hash, a stored snapshot is never
     * rewritten, and a different object under that key is an error, never overwritten.
     */
    async snapshotSchema(input: SnapshotSchemaInput): Promise<SnapshotSchemaResult> {
      const ref = resolveTableRef(input);
      const ctx = await withClient(deps, ref.database, (client) =>
        loadTableContext(deps, ref, client),
      );
      const info = activityInfo();
      const now = new Date().toISOString();
      const snapshot: SchemaSnapshot = {
        format: SCHEMA_SNAPSHOT_FORMAT,
        ...ref,
        schemaHash: ctx.schemaHash,
        ...ctx.shape,
        timestampColumn: ctx.table.timestampColumn,
        archiveKey: ctx.table.primaryKey,
        capturedAt: now,
        capturedBy: info.workflowExecution?.workflowId ?? `activity ${info.activityId}`,
      };
      const key = schemaSnapshotKey(ctx.location, ctx.schemaHash);
      const stored = await writeOnce(
        s3,
        bucket,
        key,
        snapshot,
        (found) => found.schemaHash === ctx.schemaHash,
      );
      const created = stored === snapshot;

      const latestKey = latestSchemaKey(ctx.location);
      const latest = await readJson<LatestSchema>(s3, bucket, latestKey);
      let previousSchemaHash: string | null = null;
      if (latest?.schemaHash !== ctx.schemaHash) {
        if (latest) {
          previousSchemaHash = latest.schemaHash;
          const before = await readJson<SchemaSnapshot>(s3, bucket, latest.key);
          if (before) {
            const change = diffSchemas(before, stored, now);
            await putObjectJson(
              s3,
              bucket,
              schemaChangeKey(ctx.location, now, ctx.schemaHash),
              change,
            );
            log.warn('table schema changed since the last snapshot', {
              key,
              from: latest.schemaHash,
            });
          }
        }
        await putObjectJson(s3, bucket, latestKey, {
          schemaHash: ctx.schemaHash,
          key,
          since: now,
        } satisfies LatestSchema);
      }
      log.info('schema snapshot stored', { key, schemaHash: ctx.schemaHash, created });
      return {
        ...ref,
        schemaHash: ctx.schemaHash,
        columnCount: ctx.shape.columns.length,
        primaryKey: ctx.shape.primaryKey,
        bucket,
        key,
        created,
        previousSchemaHash,
      };
    },
  };
}
