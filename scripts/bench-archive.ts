/**
 * `npm run bench:archive [-- --rows 1000000 --batch-size 10000]`: archiver throughput against a
 * baseline measured in the same run on the same rows. For each size (rows/10, then rows) it
 * creates a scratch database with an audit table of ~300-byte rows, times the baseline
 * `COPY ... TO STDOUT | gzip -1 | upload to the same MinIO` (median of three runs), then
 * archives the table through an in-process worker at default settings, except that batches
 * follow each other without the default rest (`nice_ratio` 0: this measures the pipeline,
 * bench:impact the pacing), and reads the phase timings back from the workflow's history:
 * export+upload+verify (findBatch, exportBatch and verifyBatch, which also writes the
 * deletion manifest from its read-back) and delete (deleteBatch). Peak RSS of the process that hosts the worker is sampled throughout. Cleans
 * up its databases and bucket objects. Needs the stack up (npm run stack:up).
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
    // Default throttling without the rest (the helper sets nice_ratio 0); the retention is
    // chosen so that every row is old.
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
    for (let i = 0; i < 3; i++) runs.push(await baseline(s3, database, `${prefix}baseline.tsv.gz`));
    const base = runs.sort((a, b) => a.ms - b.ms)[1]!;

    process.stdout.write(`${bench.fmt(rows)} rows: archiving ...\n`);
    worker = await startTestWorker(config);
    const rssBefore = process.memoryUsage().rss;
    const rss = bench.sampleRss();
    const started = performance.now();
    const workflowId = `bench-archive/${database}`;
    const outcome = await worker.client.workflow.execute<typeof ArchiveTable>('ArchiveTable', {
      taskQueue: worker.taskQueue,
      workflowId,
      args: [{ database, schema: 'public', table: 'audit_log' }],
    });
    const totalMs = performance.now() - started;
    const rssPeak = rss.stop();
    if (outcome.outcome !== 'archived' || outcome.rowsDeleted !== rows) {
      throw new Error(`the archive did not move every row: ${JSON.stringify(outcome)}`);
    }
    // Continue-as-new splits long runs: add up every run of the chain.
    const times = new Map<string, number>();
    let runId: string | undefined;
    for (;;) {
      const handle = worker.client.workflow.getHandle(workflowId, runId);
      const history = await handle.fetchHistory();
      for (const [type, ms] of bench.activityTimes(history))
        times.set(type, (times.get(type) ?? 0) + ms);
      const first = history.events?.[0]?.workflowExecutionStartedEventAttributes;
      const previous = first?.continuedExecutionRunId;
      if (!previous) break;
      runId = previous;
    }
    const t = (type: string) => times.get(type) ?? 0;
    return {
      rows,
      tableMiB: tableBytes,
      baselineMs: base.ms,
      baselineBytes: base.bytes,
      exportMs: t('findBatch') + t('exportBatch') + t('verifyBatch'),
      deleteMs: t('deleteBatch'),
      totalMs,
      archivedBytes: outcome.bytes,
      rssBefore,
      rssPeak,
    };
  } finally {
    await worker?.stop();
    await removePrefix(s3, prefix).catch(() => undefined);
    s3.destroy();
    await bench.dropDatabase(database);
  }
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
      'archive MiB',
      'baseline MiB',
      'RSS before MiB',
      'peak RSS MiB',
    ],
    ...results.map((r) => [
      bench.fmt(r.rows),
      bench.mib(r.tableMiB),
      perSec(r.rows, r.baselineMs),
      perSec(r.rows, r.exportMs),
      `${bench.fmt(r.baselineMs / r.exportMs, 2)}x`,
      perSec(r.rows, r.deleteMs),
      perSec(r.rows, r.totalMs),
      bench.mib(r.archivedBytes),
      bench.mib(r.baselineBytes),
      bench.mib(r.rssBefore),
      bench.mib(r.rssPeak),
    ]),
  ]);
  const [small, large] = results as [Result, Result];
  process.stdout.write(
    `\nratio = archiver export+upload+verify throughput / baseline throughput (goal: 0.7x or better)\n` +
      `peak RSS at ${bench.fmt(large.rows)} rows / at ${bench.fmt(small.rows)} rows: ${bench.fmt(large.rssPeak / small.rssPeak, 2)}x ` +
      `(flat means close to 1.0x while the rows grow ${bench.fmt(large.rows / small.rows)}x)\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
