/**
 * Records the workflow histories that test/replay/ replays (`npm run histories:record`, with
 * the stack up): one run of every workflow type the worker hosts against the real services,
 * and the shapes of ArchiveTable that take other paths: a dry run, and, with its activities
 * in memory (test/helpers/fake-table.ts), a cancellation between batches, a lock whose holder
 * dies, a table locked by another run, and a run continued as new. Run it when a workflow
 * changes on purpose. Once a release has runs in flight, guard such a change with patched()
 * and add the new histories next to the old ones; before that, replace them.
 * `--only NAME,...` writes only the histories of those names (e.g. `--only place-hold` for a
 * new workflow type), leaving the others as they are.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { Activities } from '../activities';
import type { PlaceHoldInput } from '../src/shared/restore-types';
import type { ArchiveTable } from '../workflows';
import { archiveTableWorkflowId } from '../src/shared/archive-types';
import { testConfig } from '../test/helpers/config';
import { createAuditTable, TestDatabase } from '../test/helpers/database';
import { TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE } from '../test/helpers/stack';
import {
  cancelAfterExports,
  fakeTable,
  lockHolderDiesOnce,
  runArchiveTable,
  slowExports,
} from '../test/helpers/fake-table';
import { startTestWorker, uniqueTaskQueue } from '../test/helpers/worker';

const OUT = path.join(__dirname, '..', 'test', 'fixtures', 'histories');
const STAMP = new Date().toISOString().slice(0, 16).replace(/[-:]/g, '').replace('T', '-');
const onlyAt = process.argv.indexOf('--only');
const ONLY = onlyAt >= 0 ? new Set((process.argv[onlyAt + 1] ?? '').split(',')) : undefined;

/** Saves the history of a workflow's latest run as test/fixtures/histories/STAMP-NAME.json. */
async function save(client: Client, name: string, workflowId: string): Promise<void> {
  if (ONLY && !ONLY.has(name)) return;
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  mkdirSync(OUT, { recursive: true });
  // One line: the history as the server keeps it, without the pretty-printing's whitespace.
  const compact = JSON.stringify(JSON.parse(historyToJSON(history)));
  writeFileSync(path.join(OUT, `${STAMP}-${name}.json`), `${compact}\n`);
}

/**
 * Records the shapes of ArchiveTable that need a fault or a race to happen: its activities in
 * memory, so that each shape comes out the same every time.
 */
async function recordInMemoryShapes(): Promise<void> {
  const env = await TestWorkflowEnvironment.createFromExistingServer({
    address: TEMPORAL_ADDRESS,
    namespace: TEMPORAL_NAMESPACE,
  });
  const shape = async (
    name: string,
    activities: Partial<Activities>,
    watch?: (handle: WorkflowHandle<typeof ArchiveTable>) => Promise<void>,
  ) => {
    const workflowId = `history-${name}-${STAMP}`;
    await runArchiveTable(env, activities, { workflowId, watch });
    await save(env.client, name, workflowId);
  };
  try {
    const cancelled = slowExports(20, 200);
    await shape('archive-table-cancelled', cancelled, cancelAfterExports(cancelled, 2));
    await shape('archive-table-lock-holder-died', lockHolderDiesOnce(3));
    await shape(
      'archive-table-locked',
      fakeTable(3, {
        holdTableLock: () => Promise.resolve({ acquired: false, heldBy: 'another run' }),
      }),
    );
    // Just enough batches to pass the run's history threshold (4,000 events, about 260
    // batches) once: the history saved is the last run's, which starts from the state the
    // first one carried over and archives the few batches left.
    await shape('archive-table-continued-as-new', fakeTable(270));
  } finally {
    await env.teardown();
  }
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  process.env.AWS_ACCESS_KEY_ID ??= 'minioadmin';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'minioadmin';
  const db = await TestDatabase.create();
  const connection = await Connection.connect({ address: TEMPORAL_ADDRESS });
  const client = new Client({ connection, namespace: TEMPORAL_NAMESPACE });
  try {
    await createAuditTable(db, { rows: 40 });
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
    try {
      const ref = { database: db.name, schema: 'public', table: 'audit_log' };
      const id = (name: string) => `history-${name}-${STAMP}-${db.name}`;
      /** Runs a workflow to its end and saves its history as `name`. */
      const record = async (name: string, type: string, args: unknown[]) => {
        await client.workflow.execute(type, { taskQueue, workflowId: id(name), args });
        await save(client, name, id(name));
      };
      await record('snapshot-schema', 'SnapshotSchema', [ref]);
      await record('archive-table-dry-run', 'ArchiveTable', [{ ...ref, dryRun: true }]);
      await record('archive-all', 'ArchiveAll', [{}]);
      await save(client, 'archive-table', archiveTableWorkflowId(ref));
      await record('validate', 'Validate', [{}]);
      await record('restore-side-table', 'Restore', [{ ...ref, targetTable: 'audit_log_side' }]);
      const endDate = new Date(Date.now() - 25 * 86_400_000).toISOString().slice(0, 10);
      await record('restore-into-source', 'Restore', [{ ...ref, endDate }]);
      const hold: PlaceHoldInput = {
        ...ref,
        reason: 'recorded history',
        days: { first: '2020-01-01', last: '2020-01-31' },
        placedBy: 'record-histories',
      };
      await record('place-hold', 'PlaceHold', [hold]);
      await record('release-holds', 'ReleaseHolds', [ref]);
      await record('audit-trail', 'AuditTrail', [{ verify: true }]);
    } finally {
      await worker.stop();
    }
    await recordInMemoryShapes();
  } finally {
    await connection.close();
    await db.drop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
