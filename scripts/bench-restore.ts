/**
 * `npm run bench:restore [-- --rows N]`: restore throughput against a baseline measured in the
 * same run on the same rows. The table (default 200,000 rows of about 300 bytes) is archived
 * first; then the Restore workflow brings it back (read back from MinIO, verified, COPY into
 * a staging table, cast into the table), and the baseline loads the same rows with a plain
 * `COPY ... FROM STDIN` of their text form. Prints rows per second of both and the ratio.
 */
import { randomUUID } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import type { ArchiveTable, Restore } from '../workflows';
import { testConfig } from '../test/helpers/config';
import { startTestWorker, uniqueTaskQueue } from '../test/helpers/worker';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import {
  createAuditRows,
  createDatabase,
  dropDatabase,
  flag,
  fmt,
  mib,
  printTable,
  sampleRss,
  scratchName,
  withDatabase,
} from './bench-lib';

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const rows = flag('rows', 200_000);
  const database = scratchName('restore');
  await createDatabase(database);
  try {
    process.stdout.write(`creating ${fmt(rows)} audit rows in ${database}\n`);
    await withDatabase(database, (c) => createAuditRows(c, 'audit_log', rows));

    // Baseline: the same rows' text form, loaded with a plain COPY FROM STDIN.
    const dump = await withDatabase(database, async (c) => {
      const chunks: Buffer[] = [];
      await pipeline(
        c.query(copyTo('copy (select * from audit_log order by id) to stdout')),
        new Writable({
          write(chunk: Buffer, _e, done) {
            chunks.push(chunk);
            done();
          },
        }),
      );
      await c.query('create table baseline (like audit_log including all)');
      return Buffer.concat(chunks);
    });
    const baselineMs = await withDatabase(database, async (c) => {
      const started = performance.now();
      const sink = c.query(copyFrom('copy baseline from stdin'));
      await pipeline(Readable.from([dump]), sink);
      return performance.now() - started;
    });

    const config = testConfig({
      database,
      prefix: `bench-restore-${randomUUID()}/`,
      taskQueue: uniqueTaskQueue(),
      overrides: (c) => {
        c.defaults = { retention_days: 30, batch_size: 10_000, pause_between_batches_ms: 0 };
        c.worker = { http_address: '127.0.0.1:0', max_concurrent_activities: 4 };
      },
    });
    const worker = await startTestWorker(config);
    try {
      const ref = { database, table: 'audit_log' };
      process.stdout.write('archiving\n');
      const archived = await worker.client.workflow.execute<typeof ArchiveTable>('ArchiveTable', {
        taskQueue: worker.taskQueue,
        workflowId: `bench-archive-${randomUUID()}`,
        args: [ref],
      });
      if (archived.outcome !== 'archived' || archived.rowsDeleted !== rows) {
        throw new Error(`the archive did not take every row: ${JSON.stringify(archived)}`);
      }
      process.stdout.write('restoring\n');
      const rss = sampleRss();
      const started = performance.now();
      const restored = await worker.client.workflow.execute<typeof Restore>('Restore', {
        taskQueue: worker.taskQueue,
        workflowId: `bench-restore-${randomUUID()}`,
        args: [ref],
      });
      const restoreMs = performance.now() - started;
      const peak = rss.stop();
      if (restored.outcome !== 'restored' || restored.inserted !== rows) {
        throw new Error(`the restore did not bring every row back: ${JSON.stringify(restored)}`);
      }
      const perSecond = (ms: number) => rows / (ms / 1000);
      process.stdout.write('\n');
      printTable([
        ['pipeline', 'rows', 'seconds', 'rows/s'],
        [
          'restore (verify + COPY + cast)',
          fmt(rows),
          fmt(restoreMs / 1000, 2),
          fmt(perSecond(restoreMs)),
        ],
        [
          'baseline COPY FROM STDIN',
          fmt(rows),
          fmt(baselineMs / 1000, 2),
          fmt(perSecond(baselineMs)),
        ],
      ]);
      process.stdout.write(
        `\nrestore / baseline: ${fmt(perSecond(restoreMs) / perSecond(baselineMs), 2)}x (goal 0.7x or better); ` +
          `${restored.objects} objects; peak RSS of this process (worker included) ${mib(peak)} MiB\n`,
      );
    } finally {
      await worker.stop();
    }
  } finally {
    await dropDatabase(database);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(
    `bench:restore failed: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exitCode = 1;
});
