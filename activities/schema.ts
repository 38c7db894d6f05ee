import { activityInfo, log } from '@temporalio/activity';
import { diffSchemas } from '../src/archive/schema-snapshot';
import { resolveTableRef } from '../src/shared/table-ref';
import type { SnapshotSchemaInput, SnapshotSchemaResult } from '../src/shared/workflow-types';
import { LATEST_SCHEMA_FORMAT, SCHEMA_SNAPSHOT_FORMAT } from '../src/store/documents';
import { proveEncryption } from '../src/store/probe';
import { withTable } from './context';
import type { ActivityDeps } from './deps';

export function schemaActivities(deps: ActivityDeps) {
  return {
    /**
     * Reads the table's columns, types and keys from the catalog and stores them in the bucket
     * as a content-addressed snapshot; when they differ from the table's latest snapshot, also
     * records what changed. Idempotent: the key is the schema hash, a stored snapshot is never
     * rewritten, and a different object under that key is an error, never overwritten.
     * The first step of every run that writes: when the config asks for encryption, it first
     * proves that the store encrypts (src/store/probe.ts), so that nothing is archived to a
     * store that does not.
     */
    async snapshotSchema(input: SnapshotSchemaInput): Promise<SnapshotSchemaResult> {
      const ref = resolveTableRef(input);
      const ctx = await withTable(deps, ref, (c) => Promise.resolve(c));
      const { archive } = ctx;
      await proveEncryption(deps.store.bucket, deps.store.prefix);
      const info = activityInfo();
      const now = new Date().toISOString();
      const stored = await archive.saveSchemaSnapshot({
        format: SCHEMA_SNAPSHOT_FORMAT,
        ...ref,
        schemaHash: ctx.schemaHash,
        ...ctx.shape,
        timestampColumn: ctx.table.timestampColumn,
        archiveKey: ctx.table.primaryKey,
        capturedAt: now,
        capturedBy: info.workflowExecution?.workflowId ?? `activity ${info.activityId}`,
      });
      const created = stored.capturedAt === now;
      const key = archive.schemaSnapshotKey(ctx.schemaHash);

      const latest = await archive.latestSchema();
      let previousSchemaHash: string | null = null;
      if (latest?.schemaHash !== ctx.schemaHash) {
        if (latest) {
          previousSchemaHash = latest.schemaHash;
          const before = await archive.schemaSnapshot(latest.key);
          if (before) {
            await archive.saveSchemaChange(diffSchemas(before, stored, now));
            log.warn('table schema changed since the last snapshot', {
              key,
              from: latest.schemaHash,
            });
          }
        }
        await archive.saveLatestSchema({
          format: LATEST_SCHEMA_FORMAT,
          schemaHash: ctx.schemaHash,
          key,
          since: now,
        });
      }
      log.info('schema snapshot stored', { key, schemaHash: ctx.schemaHash, created });
      return {
        ...ref,
        schemaHash: ctx.schemaHash,
        columnCount: ctx.shape.columns.length,
        primaryKey: ctx.shape.primaryKey,
        bucket: deps.store.bucket.name,
        key,
        created,
        previousSchemaHash,
      };
    },
  };
}
