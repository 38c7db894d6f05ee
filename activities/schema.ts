import { activityInfo, log } from '@temporalio/activity';
import { schemaSnapshotKey } from '../src/archive/layout';
import {
  schemaHash,
  SCHEMA_SNAPSHOT_FORMAT,
  type SchemaSnapshot,
} from '../src/archive/schema-snapshot';
import { findTable } from '../src/config';
import { inspectTable, requireArchivable } from '../src/postgres/inspect';
import { getText, putIfAbsent } from '../src/s3/objects';
import { ObjectConflictError } from '../src/shared/errors';
import { resolveTableRef } from '../src/shared/table-ref';
import type { SnapshotSchemaInput, SnapshotSchemaResult } from '../src/shared/workflow-types';
import type { ActivityDeps } from './deps';

export function schemaActivities({ config, pools, s3 }: ActivityDeps) {
  return {
    /**
     * Reads the table's columns, types and keys from the catalog and stores them in the bucket
     * as a content-addressed snapshot. Idempotent: the key is the schema hash, an existing
     * snapshot of the same schema is left untouched, and a different object under that key is
     * an error, never overwritten.
     */
    async snapshotSchema(input: SnapshotSchemaInput): Promise<SnapshotSchemaResult> {
      const ref = resolveTableRef(input);
      const table = findTable(config, ref);
      const client = await pools.get(ref.database).connect();
      let inspection;
      try {
        inspection = requireArchivable(await inspectTable(client, table), table);
      } finally {
        client.release();
      }

      const shape = {
        columns: inspection.columns.map((c) => ({
          name: c.name,
          type: c.type,
          nullable: !c.not_null,
        })),
        primaryKey: inspection.primaryKey,
      };
      const hash = schemaHash(shape);
      const info = activityInfo();
      const snapshot: SchemaSnapshot = {
        format: SCHEMA_SNAPSHOT_FORMAT,
        database: ref.database,
        schema: ref.schema,
        table: ref.table,
        schemaHash: hash,
        ...shape,
        timestampColumn: table.timestampColumn,
        archiveKey: table.primaryKey,
        capturedAt: new Date().toISOString(),
        capturedBy: info.workflowExecution?.workflowId ?? `activity ${info.activityId}`,
      };
      const key = schemaSnapshotKey({ prefix: config.s3.prefix, ...ref }, hash);
      const bucket = config.s3.bucket;

      const outcome = await putIfAbsent(s3, {
        bucket,
        key,
        body: `${JSON.stringify(snapshot, null, 2)}\n`,
        contentType: 'application/json',
      });
      if (outcome === 'exists') {
        const stored = await getText(s3, bucket, key);
        const storedHash =
          stored === undefined
            ? undefined
            : (JSON.parse(stored) as Partial<SchemaSnapshot>).schemaHash;
        if (storedHash !== hash) {
          throw new ObjectConflictError(
            `s3://${bucket}/${key} exists but does not hold schema ${hash}; it was left unchanged`,
            { bucket, key },
          );
        }
      }
      log.info('schema snapshot stored', { key, schemaHash: hash, created: outcome === 'created' });
      return {
        ...ref,
        schemaHash: hash,
        columnCount: shape.columns.length,
        primaryKey: shape.primaryKey,
        bucket,
        key,
        created: outcome === 'created',
      };
    },
  };
}
