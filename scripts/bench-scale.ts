/**
 * `npm run bench:scale [-- --databases 100 --tables 10 --rows 100]`: one ArchiveAll run over
 * many small tables. Creates a template database with `tables` audit tables, clones it
 * `databases` times (CREATE DATABASE ... TEMPLATE is a file copy, fast), archives them all in
 * one run through an in-process worker, then prints the total time, the per-table time
 * (median, p95), the parent's history length over all its continue-as-new runs, the size of
 * its result, and checks that every table finished with every old row archived. Batches are
 * not rested (`nice_ratio` 0): what it measures is the per-table overhead. Drops every
 * scratch database and bucket object it made.
 */
import { randomUUID } from 'node:crypto';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { createS3Client } from '../src/store/client';
import type { ArchiveAll } from '../workflows';
import { testConfig } from '../test/helpers/config';
import { BUCKET } from '../test/helpers/stack';
import { startTestWorker, uniqueTaskQueue, type TestWorker } from '../test/helpers/worker';
import * as bench from './bench-lib';

const DATABASES = bench.flag('databases', 100);
const TABLES = bench.flag('tables', 10);
const ROWS = bench.flag('rows', 100);
const PARALLEL_TABLES = bench.flag('parallel-tables', 16);
const PARALLEL_DATABASES = bench.flag('parallel-databases', 8);
const PARALLEL_PER_DATABASE = bench.flag('parallel-per-database', 2);

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const template = bench.scratchName('scale_tpl');
  const databases = Array.from({ length: DATABASES }, (_, i) => `${template}_${i}`);
  const tables = Array.from({ length: TABLES }, (_, i) => `audit_${i}`);
  const prefix = `bench-scale-${randomUUID()}/`;
  const created: string[] = [];
  let worker: TestWorker | undefined;
  const s3 = createS3Client(testConfig({ database: template, prefix }).s3);
  try {
    const setupStarted = performance.now();
    await bench.createDatabase(template);
    created.push(template);
    await bench.withDatabase(template, async (c) => {
      // Old rows over 3 days: a few batches per table, as a small real audit table has.
      for (const t of tables) await bench.createAuditRows(c, t, ROWS, { spanDays: 3 });
    });
    for (const name of databases) {
      await bench.createDatabase(name, template);
      created.push(name);
    }
    process.stdout.write(
      `created ${DATABASES} databases x ${TABLES} tables x ${ROWS} rows in ${bench.fmt((performance.now() - setupStarted) / 1000, 1)} s\n`,
    );

    const config = testConfig({
      database: databases[0]!,
      prefix,
      taskQueue: uniqueTaskQueue(),
      overrides: (c) => {
        c.defaults = { retention_days: 30 };
        c.archive = {
          max_parallel_tables: PARALLEL_TABLES,
          max_parallel_databases: PARALLEL_DATABASES,
          max_parallel_tables_per_database: PARALLEL_PER_DATABASE,
        };
        const base = c.databases[0]!;
        c.databases = databases.map((name) => ({
          ...base,
          name,
          tables: tables.map((t) => ({
            name: t,
            timestamp_column: 'created_at',
            primary_key: 'id',
          })),
        }));
      },
    });
    worker = await startTestWorker(config);
    const workflowId = `bench-scale/${template}`;
    const started = performance.now();
    const result = await worker.client.workflow.execute<typeof ArchiveAll>('ArchiveAll', {
      taskQueue: worker.taskQueue,
      workflowId,
      args: [{}],
    });
    const totalMs = performance.now() - started;

    // The parent continues as new before its history grows large: walk its chain of runs.
    const runs: number[] = [];
    let runId: string | undefined;
    for (;;) {
      const history = await worker.client.workflow.getHandle(workflowId, runId).fetchHistory();
      runs.unshift(history.events?.length ?? 0);
      const previous =
        history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId;
      if (!previous) break;
      runId = previous;
    }

    const expected = DATABASES * TABLES;
    const archived = result.tables.filter(
      (t) => t.outcome === 'archived' && t.rowsDeleted === ROWS,
    ).length;
    const durations = result.tables.map((t) => t.durationMs).sort((a, b) => a - b);
    const resultBytes = Buffer.byteLength(JSON.stringify(result));
    process.stdout.write(
      `\nbench:scale (${DATABASES} databases x ${TABLES} tables x ${ROWS} rows; parallel: ${PARALLEL_TABLES} tables, ${PARALLEL_DATABASES} databases, ${PARALLEL_PER_DATABASE} per database)\n\n`,
    );
    bench.printTable([
      ['figure', 'value'],
      ['tables in the result', `${bench.fmt(result.tables.length)} of ${bench.fmt(expected)}`],
      ['tables archived with every old row', `${bench.fmt(archived)} of ${bench.fmt(expected)}`],
      ['failed', bench.fmt(result.failed)],
      ['total time', `${bench.fmt(totalMs / 1000, 1)} s`],
      ['tables per second', bench.fmt((expected / totalMs) * 1000, 2)],
      ['per-table time, median', `${bench.fmt(bench.percentile(durations, 50))} ms`],
      ['per-table time, p95', `${bench.fmt(bench.percentile(durations, 95))} ms`],
      ['parent runs (continue-as-new)', bench.fmt(runs.length)],
      ['parent history events, total', bench.fmt(runs.reduce((s, n) => s + n, 0))],
      ['parent history events, largest run', bench.fmt(Math.max(...runs))],
      ['parent result size', `${bench.fmt(resultBytes / 1024, 1)} KiB`],
    ]);
    if (archived !== expected || result.tables.length !== expected) {
      throw new Error(`not every table finished: ${archived} of ${expected} archived`);
    }
    process.stdout.write(`\nevery table finished: ${bench.fmt(expected)} archived\n`);
  } finally {
    await worker?.stop();
    for (const name of created.reverse()) await bench.dropDatabase(name).catch(() => undefined);
    await bench.deletePrefix(s3, BUCKET, prefix);
    s3.destroy();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
