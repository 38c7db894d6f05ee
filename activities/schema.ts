import { activityInfo, log } from '@temporalio/activity';
import { describeChange, diffSchemas } from '../src/archive/schema-snapshot';
import { SchemaDriftError } from '../src/shared/errors';
import { resolveTableRef } from '../src/shared/table-ref';
import type { SnapshotSchemaInput, SnapshotSchemaResult } from '../src/shared/workflow-types';
import { LATEST_SCHEMA_FORMAT, SCHEMA_SNAPSHOT_FORMAT } from '../src/store/documents';
import { proveEncryption } from '../src/store/probe';
import { withTable } from './context';
import { recordAudit } from './audit';
import type { ActivityDeps } from './deps';

export function schemaActivities(deps: ActivityDeps) {
  return {
    /**
     * Reads the table's columns, types and keys from the catalog and stores them in the bucket
     * as a content-addressed snapshot; when they differ from the table's latest snapshot, also
     * records what changed, unless the table's schema_drift is block and a run asks
     * (`enforceDrift`): then the run stops with SchemaDriftError before any export, and the
     * new schema becomes the latest only once SnapshotSchema accepts it. Idempotent: the key is the schema hash, a stored snapshot is never
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
        const before = latest && (await archive.schemaSnapshot(latest.key));
        if (latest && before) {
          previousSchemaHash = latest.schemaHash;
          const change = diffSchemas(before, stored, now);
          const blocked = input.enforceDrift === true && ctx.table.schemaDrift === 'block';
          await recordAudit(
            deps,
            'schema-change',
            `schema-change:${change.from}:${change.to}`,
            ref,
            {
              from: change.from,
              to: change.to,
              summary: describeChange(change),
              policy: ctx.table.schemaDrift,
              blocked,
            },
          );
          if (blocked)
            throw new SchemaDriftError(
              `${ref.database}: ${ref.schema}.${ref.table}: the schema changed since the last snapshot (${describeChange(change)}); schema_drift is block, so nothing was archived. Check the change, then accept it with: audit-archiver snapshot-schema -d ${ref.database} -t ${ref.schema}.${ref.table}`,
              { database: ref.database, table: `${ref.schema}.${ref.table}` },
            );
          await archive.saveSchemaChange(change);
          const level = ctx.table.schemaDrift === 'follow' ? 'info' : 'warn';
          log[level]('table schema changed since the last snapshot', {
            key,
            from: latest.schemaHash,
            change: describeChange(change),
          });
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
