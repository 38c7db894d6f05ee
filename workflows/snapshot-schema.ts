import { proxyActivities, upsertSearchAttributes } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { tableSearchAttributes } from '../src/shared/search-attributes';
import { resolveTableRef } from '../src/shared/table-ref';
import type { SnapshotSchemaInput, SnapshotSchemaResult } from '../src/shared/workflow-types';
import { SHORT_IO } from './activity-options';
import { withOutcome } from './run-metadata';

const { snapshotSchema } = proxyActivities<Activities>(SHORT_IO);

/**
 * Captures a configured table's schema (columns, types, keys, hash) into the bucket.
 * Startable from anywhere with only names:
 *   temporal workflow start --type SnapshotSchema --task-queue audit-archiver \
 *     --input '{"database":"app","schema":"public","table":"audit_log"}'
 */
export async function SnapshotSchema(input: SnapshotSchemaInput): Promise<SnapshotSchemaResult> {
  const ref = resolveTableRef(input);
  upsertSearchAttributes(tableSearchAttributes(ref));
  return withOutcome(
    () => snapshotSchema(ref),
    (result) => (result.created ? 'stored' : 'unchanged'),
  );
}
