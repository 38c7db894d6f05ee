import { WorkflowIdConflictPolicy } from '@temporalio/client';
import type { SnapshotSchema } from '../../../workflows';
import { selectTables } from '../../config';
import { tableSearchAttributes } from '../../shared/search-attributes';
import { snapshotSchemaWorkflowId } from '../../shared/workflow-types';
import { connectClient } from '../../temporal-client/connection';
import type { CommandContext } from './context';
import { tableName } from './format';
import { cliRunMetadata, commandLine } from './run-metadata';

export interface SnapshotCommandOptions {
  database?: string;
  table?: string;
}

/**
 * Runs the SnapshotSchema workflow for each selected table through the Temporal server (a
 * worker must be running) and prints where each snapshot was stored.
 */
export async function snapshotCommand(
  ctx: CommandContext,
  options: SnapshotCommandOptions,
): Promise<number> {
  const tables = selectTables(ctx.config, options);
  const client = await connectClient(ctx.config.temporal, ctx.env);
  try {
    for (const t of tables) {
      const ref = { database: t.database.name, schema: t.schema, table: t.name };
      const workflowId = snapshotSchemaWorkflowId(ref);
      ctx.out(`${tableName(ref)}: workflow ${workflowId}`);
      const result = await client.workflow.execute<typeof SnapshotSchema>('SnapshotSchema', {
        taskQueue: ctx.config.temporal.task_queue,
        workflowId,
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
        args: [ref],
        typedSearchAttributes: tableSearchAttributes(ref),
        staticSummary: `Schema snapshot of ${tableName(ref)}`,
        ...cliRunMetadata(ctx, {
          scope: tableName(ref),
          command: commandLine('snapshot-schema', {
            database: options.database,
            table: options.table,
          }),
        }),
      });
      ctx.out(
        `  schema ${result.schemaHash.slice(0, 12)}: ${result.columnCount} columns, primary key (${result.primaryKey.join(', ')}), ${result.created ? 'stored' : 'already stored'} at s3://${result.bucket}/${result.key}`,
      );
    }
    return 0;
  } finally {
    await client.connection.close();
  }
}
