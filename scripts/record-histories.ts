/**
 * Records the workflow histories that test/replay/ replays (`npm run histories:record`, with
 * the stack up). Run it when a workflow changes on purpose, after guarding the change with
 * patched() so that the histories recorded before it still replay; commit the new files next
 * to the old ones, never in place of them.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { ArchiveAll, SnapshotSchema } from '../workflows';
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
    // Date and time: a second recording on the same day adds files instead of replacing them.
    const stamp = new Date().toISOString().slice(0, 16).replace(/[-:]/g, '').replace('T', '-');
    const save = async (name: string, workflowId: string) => {
      const history = await client.workflow.getHandle(workflowId).fetchHistory();
      mkdirSync(OUT, { recursive: true });
      writeFileSync(path.join(OUT, `${stamp}-${name}.json`), historyToJSON(history));
    };
    try {
      const ref = { database: db.name, schema: 'public', table: 'audit_log' };
      await client.workflow.execute<typeof SnapshotSchema>('SnapshotSchema', {
        taskQueue: config.temporal.task_queue,
        workflowId: `history-snapshot-${stamp}-${db.name}`,
        args: [ref],
      });
      await save('snapshot-schema', `history-snapshot-${stamp}-${db.name}`);
      const runId = `history-archive-all-${stamp}-${db.name}`;
      await client.workflow.execute<typeof ArchiveAll>('ArchiveAll', {
        taskQueue: config.temporal.task_queue,
        workflowId: runId,
        args: [{}],
      });
      await save('archive-all', runId);
      await save('archive-table', `archive/${db.name}/public.audit_log`);
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
