/**
 * Records the workflow histories that test/replay/ replays (`npm run histories:record`, with
 * the stack up): one run of every workflow type the worker hosts, and the shapes of
 * ArchiveTable that take other paths (a dry run). Run it when a workflow changes on purpose.
 * Once a release has runs in flight, guard such a change with patched() and add the new
 * histories next to the old ones; before that, replace them.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type {
  ArchiveAll,
  ArchiveTable,
  ReleaseHolds,
  Restore,
  SnapshotSchema,
  Validate,
} from '../workflows';
import { archiveTableWorkflowId } from '../src/shared/archive-types';
import { testConfig } from '../test/helpers/config';
import { createAuditTable, TestDatabase } from '../test/helpers/database';
import { TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE } from '../test/helpers/stack';
import { startTestWorker, uniqueTaskQueue } from '../test/helpers/worker';

const OUT = path.join(__dirname, '..', 'test', 'fixtures', 'histories');

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  process.env.AWS_ACCESS_KEY_ID ??= 'minioadmin';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'minioadmin';
  const db = await TestDatabase.create();
  const connection = await Connection.connect({ address: TEMPORAL_ADDRESS });
  const client = new Client({ connection, namespace: TEMPORAL_NAMESPACE });
  try {
    await createAuditTable(db, { rows: 120 });
    await db.query('create table audit_log_side (like audit_log including all)');
    const config = testConfig({
      database: db.name,
      prefix: `histories-${Date.now()}/`,
      taskQueue: uniqueTaskQueue(),
      overrides: (c) => {
        // A small nice_ratio, so that the histories hold its rests (durable timers) too.
        c.defaults = {
          retention_days: 20,
          batch_size: 4,
          pause_between_batches_ms: 10,
          throttle: { nice_ratio: 1 },
        };
      },
    });
    const worker = await startTestWorker(config);
    const taskQueue = config.temporal.task_queue;
    const stamp = new Date().toISOString().slice(0, 16).replace(/[-:]/g, '').replace('T', '-');
    const save = async (name: string, workflowId: string) => {
      const history = await client.workflow.getHandle(workflowId).fetchHistory();
      mkdirSync(OUT, { recursive: true });
      writeFileSync(path.join(OUT, `${stamp}-${name}.json`), historyToJSON(history));
    };
    try {
      const ref = { database: db.name, schema: 'public', table: 'audit_log' };
      const id = (name: string) => `history-${name}-${stamp}-${db.name}`;
      await client.workflow.execute<typeof SnapshotSchema>('SnapshotSchema', {
        taskQueue,
        workflowId: id('snapshot'),
        args: [ref],
      });
      await save('snapshot-schema', id('snapshot'));
      await client.workflow.execute<typeof ArchiveTable>('ArchiveTable', {
        taskQueue,
        workflowId: id('dry-run'),
        args: [{ ...ref, dryRun: true }],
      });
      await save('archive-table-dry-run', id('dry-run'));
      await client.workflow.execute<typeof ArchiveAll>('ArchiveAll', {
        taskQueue,
        workflowId: id('archive-all'),
        args: [{}],
      });
      await save('archive-all', id('archive-all'));
      await save('archive-table', archiveTableWorkflowId(ref));
      await client.workflow.execute<typeof Validate>('Validate', {
        taskQueue,
        workflowId: id('validate'),
        args: [{}],
      });
      await save('validate', id('validate'));
      await client.workflow.execute<typeof Restore>('Restore', {
        taskQueue,
        workflowId: id('restore-side'),
        args: [{ ...ref, targetTable: 'audit_log_side' }],
      });
      await save('restore-side-table', id('restore-side'));
      await client.workflow.execute<typeof Restore>('Restore', {
        taskQueue,
        workflowId: id('restore'),
        args: [
          { ...ref, endDate: new Date(Date.now() - 25 * 86_400_000).toISOString().slice(0, 10) },
        ],
      });
      await save('restore-into-source', id('restore'));
      await client.workflow.execute<typeof ReleaseHolds>('ReleaseHolds', {
        taskQueue,
        workflowId: id('release-holds'),
        args: [ref],
      });
      await save('release-holds', id('release-holds'));
    } finally {
      await worker.stop();
    }
  } finally {
    await connection.close();
    await db.drop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
