/**
 * `npm run bench:archive [-- --rows 1000000 --batch-size 10000]`: archiver throughput against a
 * baseline measured in the same run on the same rows. For each size (rows/10, then rows) it
 * creates a scratch database with an audit table of ~300-byte rows, times the baseline
 * `COPY ... TO STDOUT | gzip -1 | upload to the same MinIO` (median of three runs), then
 * archives the table through an in-process worker at default settings (pacing included: on
 * an idle database the impact controller lets batches follow each other without a rest; any
 * rest it gives is in the end-to-end figure), and reads the phase timings back from the
 * workflow's history:
 * export+upload+verify (findBatch, exportBatch and verifyBatch, which also writes the
 * deletion manifest from its read-back) and delete (deleteBatch), each as the wall time during
 * which one of its activities ran (an export beside a verify counts once). Peak RSS of the process
 * that hosts the worker is sampled throughout. PostgreSQL's CPU (a local server's processes,
 * from the kernel's accounting) is measured for the archive run and for its floor: one plain
 * COPY out plus plain DELETEs by key of the same rows, each ending with a CHECKPOINT so that
 * both pay for the pages they dirtied. Autovacuum is off for the tables measured. Cleans up
 * its databases and bucket objects. Needs the stack up (npm run stack:up).
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { createS3Client } from '../src/store/client';
import type { ArchiveTable } from '../workflows';
import { testConfig } from '../test/helpers/config';
import { BUCKET, PG } from '../test/helpers/stack';
import { startTestWorker, uniqueTaskQueue, type TestWorker } from '../test/helpers/worker';
import * as bench from './bench-lib';

const ROWS = bench.flag('rows', 1_000_000);
const BATCH_SIZE = bench.flag('batch-size', 10_000);

interface Result {
  rows: number;
  tableMiB: number;
  baselineMs: number;
  baselineBytes: number;
  exportMs: number;
  deleteMs: number;
  totalMs: number;
  archivedBytes: number;
  rssBefore: number;
  rssPeak: number;
  /** PostgreSQL CPU seconds: the archive run, one plain COPY out, plain DELETEs of the rows. */
  cpu: { archive: number; copy: number; delete: number } | null;
}

/**
 * PostgreSQL's CPU seconds spent while `fn` runs (null when the server is not local), ending
 * with a CHECKPOINT in `database`: the pages `fn` dirtied are written within the measurement,
 * whether or not the checkpointer had got to them.
 */
async function pgCpu<T>(
  database: string,
  fn: () => Promise<T>,
): Promise<{ value: T; cpu: number | null }> {
  const before = bench.postgresCpuSeconds();
  const value = await fn();
  await bench.withDatabase(database, (c) => c.query('checkpoint'));
  const after = bench.postgresCpuSeconds();
  return { value, cpu: before === null || after === null ? null : after - before };
}

/**
 * The database half of the floor: `DELETE ... WHERE id = ANY(keys)` of every row, in batches
 * of the archive's size, on a copy of the table. The key batches are made in the database
 * before the clock starts (a million keys held by this process would show in its RSS).
 */
async function plainDeleteCpu(database: string): Promise<number | null> {
  return bench.withDatabase(database, async (c) => {
    await c.query('create table plain_delete (like audit_log including all)');
    await c.query('alter table plain_delete set (autovacuum_enabled = off)');
    await c.query('insert into plain_delete overriding system value select * from audit_log');
    await c.query(
      `create table plain_keys as
         select (row_number() over (order by id) - 1) / $1::int as batch, id from plain_delete`,
      [BATCH_SIZE],
    );
    await c.query(
      `create table plain_batches as
         select batch, array_agg(id order by id) as keys from plain_keys group by batch`,
    );
    await c.query('vacuum analyze plain_delete');
    await c.query('checkpoint');
    const { rows } = await c.query<{ batches: number }>(
      'select count(*)::int as batches from plain_batches',
    );
    const { cpu } = await pgCpu(database, async () => {
      for (let batch = 0; batch < rows[0]!.batches; batch++)
        await c.query(
          `delete from plain_delete
            where id = any((select keys from plain_batches where batch = $1::int)::bigint[])`,
          [batch],
        );
    });
    await c.query('drop table plain_delete, plain_keys, plain_batches');
    return cpu;
  });
}

/** COPY TO STDOUT through `gzip -1` into the bucket: the floor any archiver is measured against. */
async function baseline(
  s3: S3Client,
  database: string,
  key: string,
): Promise<{ ms: number; bytes: number }> {
  const started = performance.now();
  const psql = spawn(
    'psql',
    [
      '-h',
      PG.host,
      '-p',
      String(PG.port),
      '-U',
      PG.user,
      '-d',
      database,
      '-Xqc',
      'copy audit_log to stdout',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const gzip = spawn('gzip', ['-1'], { stdio: ['pipe', 'pipe', 'inherit'] });
  psql.stdout.pipe(gzip.stdin);
  let bytes = 0;
  gzip.stdout.on('data', (d: Buffer) => (bytes += d.length));
  const upload = new Upload({
    client: s3,
    params: { Bucket: BUCKET, Key: key, Body: gzip.stdout },
  });
  const [[psqlCode], [gzipCode]] = await Promise.all([
    once(psql, 'close') as Promise<[number | null]>,
    once(gzip, 'close') as Promise<[number | null]>,
    upload.done(),
  ]);
  if (psqlCode !== 0 || gzipCode !== 0)
    throw new Error(`baseline failed: psql ${psqlCode}, gzip ${gzipCode}`);
  return { ms: performance.now() - started, bytes };
}

async function removePrefix(s3: S3Client, prefix: string): Promise<void> {
  await bench.deletePrefix(s3, BUCKET, prefix);
}

async function runSize(rows: number): Promise<Result> {
  const database = bench.scratchName('archive');
  const prefix = `bench-archive-${randomUUID()}/`;
  const config = testConfig({
    database,
    prefix,
    taskQueue: uniqueTaskQueue(),
    pacing: 'default',
    // The retention is chosen so that every row is old.
    overrides: (c) => {
      c.defaults = { retention_days: 30, batch_size: BATCH_SIZE };
    },
  });
  const s3 = createS3Client(config.s3);
  let worker: TestWorker | undefined;
  await bench.createDatabase(database);
  try {
    process.stdout.write(`${bench.fmt(rows)} rows: creating the table ...\n`);
    const tableBytes = await bench.withDatabase(database, async (c) => {
      await bench.createAuditRows(c, 'audit_log', rows);
      // Vacuum now, and not in the middle of a measurement.
      await c.query('vacuum analyze audit_log');
      await c.query('alter table audit_log set (autovacuum_enabled = off)');
      // Write the new table's pages out now, not during a measurement.
      await c.query('checkpoint');
      const r = await c.query<{ bytes: string }>(
        `select pg_table_size('audit_log')::text as bytes`,
      );
      return Number(r.rows[0]!.bytes);
    });
    process.stdout.write(
      `${bench.fmt(rows)} rows: baseline COPY | gzip -1 | upload, 3 times ...\n`,
    );
    // The median of three: one run of the baseline varied 2.6x on a machine with steal time.
    const runs: { ms: number; bytes: number }[] = [];
    const copies = await pgCpu(database, async () => {
      for (let i = 0; i < 3; i++)
        runs.push(await baseline(s3, database, `${prefix}baseline.tsv.gz`));
    });
    const base = runs.sort((a, b) => a.ms - b.ms)[1]!;
    const deleteCpu = await plainDeleteCpu(database);

    process.stdout.write(`${bench.fmt(rows)} rows: archiving ...\n`);
    worker = await startTestWorker(config);
    const rssBefore = process.memoryUsage().rss;
    const rss = bench.sampleRss();
    const started = performance.now();
    const workflowId = `bench-archive/${database}`;
    const archived = await pgCpu(database, () =>
      worker!.client.workflow.execute<typeof ArchiveTable>('ArchiveTable', {
        taskQueue: worker!.taskQueue,
        workflowId,
        args: [{ database, schema: 'public', table: 'audit_log' }],
      }),
    );
    const outcome = archived.value;
    const totalMs = performance.now() - started;
    const rssPeak = rss.stop();
    if (outcome.outcome !== 'archived' || outcome.rowsDeleted !== rows) {
      throw new Error(`the archive did not move every row: ${JSON.stringify(outcome)}`);
    }
    // Continue-as-new splits long runs: take every run of the chain.
    const spans: bench.ActivitySpan[] = [];
    let runId: string | undefined;
    for (;;) {
      const handle = worker.client.workflow.getHandle(workflowId, runId);
      const history = await handle.fetchHistory();
      spans.push(...bench.activitySpans(history));
      const first = history.events?.[0]?.workflowExecutionStartedEventAttributes;
      const previous = first?.continuedExecutionRunId;
      if (!previous) break;
      runId = previous;
    }
    return {
      rows,
      tableMiB: tableBytes,
      baselineMs: base.ms,
      baselineBytes: base.bytes,
      exportMs: bench.coveredMs(spans, ['findBatch', 'exportBatch', 'verifyBatch']),
      deleteMs: bench.coveredMs(spans, ['deleteBatch']),
      totalMs,
      archivedBytes: outcome.bytes,
      rssBefore,
      rssPeak,
      cpu:
        archived.cpu === null || copies.cpu === null || deleteCpu === null
          ? null
          : // Three COPYs were measured together: one is a third.
            { archive: archived.cpu, copy: copies.cpu / 3, delete: deleteCpu },
    };
  } finally {
    await worker?.stop();
    await removePrefix(s3, prefix).catch(() => undefined);
    s3.destroy();
    await bench.dropDatabase(database);
  }
}

/** PostgreSQL CPU per million rows: the archive's, the plain COPY + DELETE floor's, and their ratio. */
function cpuCells(r: Result): string[] {
  // The kernel accounts CPU in 10 ms ticks, and a backend's ticks move to the postmaster's
  // account only when it exits: under a second of floor is within that noise.
  const floor = r.cpu ? r.cpu.copy + r.cpu.delete : 0;
  if (!r.cpu || floor < 1) return ['n/a', 'n/a', 'n/a'];
  const perMillion = (seconds: number) => (seconds / r.rows) * 1_000_000;
  return [
    bench.fmt(perMillion(r.cpu.archive), 1),
    bench.fmt(perMillion(floor), 1),
    `${bench.fmt(r.cpu.archive / floor, 2)}x`,
  ];
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const sizes = [Math.max(1, Math.round(ROWS / 10)), ROWS];
  const results: Result[] = [];
  for (const rows of sizes) results.push(await runSize(rows));
  const perSec = (rows: number, ms: number) => bench.fmt((rows / ms) * 1000);
  process.stdout.write(
    `\nbench:archive (batch_size ${bench.fmt(BATCH_SIZE)}, default pacing and throttling)\n\n`,
  );
  bench.printTable([
    [
      'rows',
      'table MiB',
      'baseline rows/s',
      'export+upload+verify rows/s',
      'ratio',
      'delete rows/s',
      'end-to-end rows/s',
      'end-to-end ratio',
      'archive MiB',
      'baseline MiB',
      'RSS before MiB',
      'peak RSS MiB',
      'PG CPU s/M rows',
      'COPY+DELETE CPU s/M',
      'CPU ratio',
    ],
    ...results.map((r) => [
      bench.fmt(r.rows),
      bench.mib(r.tableMiB),
      perSec(r.rows, r.baselineMs),
      perSec(r.rows, r.exportMs),
      `${bench.fmt(r.baselineMs / r.exportMs, 2)}x`,
      perSec(r.rows, r.deleteMs),
      perSec(r.rows, r.totalMs),
      `${bench.fmt(r.baselineMs / r.totalMs, 2)}x`,
      bench.mib(r.archivedBytes),
      bench.mib(r.baselineBytes),
      bench.mib(r.rssBefore),
      bench.mib(r.rssPeak),
      ...cpuCells(r),
    ]),
  ]);
  const [small, large] = results as [Result, Result];
  process.stdout.write(
    `\nratio = archiver export+upload+verify throughput / baseline throughput (goal: 0.5x or better)\n` +
      `end-to-end ratio = the whole run, delete included, against the same baseline (goal: 0.35x or better)\n` +
      `CPU ratio = PostgreSQL CPU of the archive run (export, delete and the rest) / of one plain COPY out plus plain DELETEs by key of the same rows (goal: 1.5x or less; n/a where the floor used under a second, or the server is not local)\n` +
      `peak RSS at ${bench.fmt(large.rows)} rows / at ${bench.fmt(small.rows)} rows: ${bench.fmt(large.rssPeak / small.rssPeak, 2)}x ` +
      `(flat means close to 1.0x while the rows grow ${bench.fmt(large.rows / small.rows)}x)\n` +
      `archive of ${bench.fmt(large.rows)} rows at the default settings, start to end: ${bench.fmt(large.totalMs / 1000, 1)} s (goal for 1,000,000 rows on an idle database: under 180 s)\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
