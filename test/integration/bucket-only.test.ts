import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import type { Config } from '../../src/config';
import type { ArchiveTable, Restore, Validate } from '../../workflows';
import { testConfig } from '../helpers/config';
import { createAuditTable, TestDatabase } from '../helpers/database';
import { PrivateTemporal } from '../helpers/private-temporal';
import { startTestWorker, uniqueTaskQueue } from '../helpers/worker';

async function digest(db: TestDatabase): Promise<string> {
  const { md5 } = await db.one<{ md5: string }>(
    `select md5(coalesce(string_agg(t::text, E'\\n' order by id), '')) as md5 from audit_log t`,
  );
  return md5;
}

// Guarantee 4 (docs/architecture.md): losing the Temporal history and the worker loses nothing restore needs.
// The archive runs on a Temporal server of its own that is then killed with all its data;
// a brand-new server and a brand-new worker restore from the bucket and the database alone.
describe('restore with only the bucket and the target database', function () {
  this.timeout(300_000);
  let db: TestDatabase;
  let config: Config;
  const servers: PrivateTemporal[] = [];

  before(async () => {
    db = await TestDatabase.create();
    await createAuditTable(db, { rows: 300 });
    config = testConfig({
      database: db.name,
      prefix: `bucket-only-${randomUUID()}/`,
      taskQueue: uniqueTaskQueue(),
      overrides: (c) => {
        c.defaults = { retention_days: 1, batch_size: 50, pause_between_batches_ms: 0 };
      },
    });
  });

  after(async () => {
    for (const server of servers) await server.stop();
    await db?.drop();
  });

  async function onFreshServer<T>(fn: (client: Client) => Promise<T>): Promise<T> {
    const server = await PrivateTemporal.start();
    servers.push(server);
    const worker = await startTestWorker(config, server.address);
    const connection = await Connection.connect({ address: server.address });
    try {
      return await fn(new Client({ connection }));
    } finally {
      await connection.close();
      await worker.stop();
      await server.stop(); // every history of this server is gone now
    }
  }

  it('validates the archive and brings every row back, byte for byte, after the Temporal server was wiped', async () => {
    const before = await digest(db);
    const archived = await onFreshServer((client) =>
      client.workflow.execute<typeof ArchiveTable>('ArchiveTable', {
        taskQueue: config.temporal.task_queue,
        workflowId: `archive-${randomUUID()}`,
        args: [{ database: db.name, table: 'audit_log' }],
      }),
    );
    assert.equal(archived.outcome, 'archived');
    const { n } = await db.one<{ n: number }>('select count(*)::int as n from audit_log');
    assert.ok(n < 300, 'old rows left the table');

    const [validated, restored] = await onFreshServer(async (client) => {
      const validation = await client.workflow.execute<typeof Validate>('Validate', {
        taskQueue: config.temporal.task_queue,
        workflowId: `validate-${randomUUID()}`,
        args: [{ database: db.name, table: 'audit_log' }],
      });
      const restoration = await client.workflow.execute<typeof Restore>('Restore', {
        taskQueue: config.temporal.task_queue,
        workflowId: `restore-${randomUUID()}`,
        args: [{ database: db.name, table: 'audit_log' }],
      });
      return [validation, restoration] as const;
    });
    assert.equal(validated.problems, 0, JSON.stringify(validated));
    assert.ok(validated.tables[0]!.objects > 0);
    assert.equal(restored.outcome, 'restored');
    assert.equal(await digest(db), before);
  });
});
