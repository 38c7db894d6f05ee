/**
 * `npm run bench:impact [-- --rate 200 --duration 60 --rounds 3 --scale 10 --archive-rows 500000]`
 * (`--batch-size N`, `--pause-ms N`, `--nice-ratio N` to measure archive settings other than
 * the defaults): what an archive at default settings costs the database's other users,
 * measured the way database people do (docs/performance.md). A fixed-rate pgbench load
 * (`pgbench -R`, per-transaction logs) runs alternately without (A) and with (B) an archive
 * running, A/B/A/B for `rounds` rounds, with a VACUUM of the archived table and a CHECKPOINT
 * before each phase. Latency is pgbench's per-transaction time plus its schedule lag (what a
 * client at a fixed rate actually waits). Prints p50/p95/p99 per phase and pooled per kind,
 * the B/A ratio, and the archive rate achieved during the B phases. Everything runs in a
 * scratch database that is dropped at the end.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { ArchiveProgress } from '../src/shared/archive-types';
import type { ArchiveTable } from '../workflows';
import { testConfig } from '../test/helpers/config';
import { PG } from '../test/helpers/stack';
import { startTestWorker, uniqueTaskQueue } from '../test/helpers/worker';
import {
  createAuditRows,
  createDatabase,
  dropDatabase,
  flag,
  fmt,
  percentile,
  printTable,
  scratchName,
  withDatabase,
} from './bench-lib';

const RATE = flag('rate', 200);
const DURATION_S = flag('duration', 60);
const ROUNDS = flag('rounds', 3);
const SCALE = flag('scale', 10);
const ARCHIVE_ROWS = flag('archive-rows', 500_000);
const CLIENTS = flag('clients', 4);
// The archive's own settings: the configuration's defaults unless given (0 = not given,
// except for the nice ratio, where 0 means no rest).
const BATCH_SIZE = flag('batch-size', 0);
const PAUSE_MS = flag('pause-ms', 0);
const NICE_RATIO = flag('nice-ratio', -1, { zero: true }); // -1: not given

interface Phase {
  kind: 'A' | 'B';
  round: number;
  latenciesMs: number[];
  tps: number;
  archivedRows: number;
}

/**
 * Runs pgbench to completion. Asynchronous on purpose: the worker runs in this process, and
 * a blocked event loop would stop the very archive the B phases measure.
 */
function pgbench(args: string[]): Promise<string> {
  const child = spawn('pgbench', ['-h', PG.host, '-p', String(PG.port), '-U', PG.user, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`pgbench ${args.join(' ')} failed:\n${err}`)),
    );
  });
}

/** Latencies (transaction time + schedule lag, in ms) from pgbench's per-transaction logs. */
function readLogs(dir: string): number[] {
  const out: number[] = [];
  for (const file of readdirSync(dir)) {
    for (const line of readFileSync(path.join(dir, file), 'utf8').split('\n')) {
      // client_id transaction_no time script_no time_epoch time_us [schedule_lag]
      const f = line.trim().split(/\s+/);
      if (f.length < 6) continue;
      out.push((Number(f[2]) + Number(f[6] ?? 0)) / 1000);
    }
  }
  return out.sort((a, b) => a - b);
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const database = scratchName('impact');
  await createDatabase(database);
  const logRoot = mkdtempSync(path.join(tmpdir(), 'aa-bench-impact-'));
  const config = testConfig({
    database,
    prefix: `bench-impact-${randomUUID()}/`,
    taskQueue: uniqueTaskQueue(),
    // Default batch size, pause, throttling and pacing: the settings the impact goal is
    // stated for.
    pacing: 'default',
    overrides: (c) => {
      c.defaults = {
        retention_days: 30,
        ...(BATCH_SIZE > 0 && { batch_size: BATCH_SIZE }),
        ...(PAUSE_MS > 0 && { pause_between_batches_ms: PAUSE_MS }),
        ...(NICE_RATIO >= 0 && { throttle: { nice_ratio: NICE_RATIO } }),
      };
    },
  });
  const worker = await startTestWorker(config);
  const phases: Phase[] = [];
  try {
    process.stdout.write(`pgbench -i -s ${SCALE} ...\n`);
    await pgbench(['-i', '-q', '-s', String(SCALE), database]);
    await withDatabase(database, (c) => createAuditRows(c, 'audit_log', 0));

    for (let round = 1; round <= ROUNDS; round++) {
      for (const kind of ['A', 'B'] as const) {
        let handle;
        if (kind === 'B') {
          // A fresh supply of old rows, more than one phase can archive, then the archive starts.
          await withDatabase(database, (c) =>
            c.query(
              `insert into audit_log (created_at, actor, action, target, payload)
               select now() - interval '400 days' + (g::float8 / $1::int) * interval '30 days',
                      'user-' || (g % 5000), 'update', 'orders/' || g,
                      jsonb_build_object('ip', '10.0.' || (g % 250) || '.1', 'agent',
                        'Mozilla/5.0 (X11; Linux x86_64) bench/' || (g % 13), 'session', md5(g::text))
                 from generate_series(1, $1::int) g`,
              [ARCHIVE_ROWS],
            ),
          );
        }
        // Every phase starts settled: the vacuum that the last phase's inserts or deletes
        // call for (autovacuum would run it in the middle of the next phase) and a checkpoint.
        // So B measures the archive's batches; the vacuum after them is measured by neither.
        await withDatabase(database, async (c) => {
          await c.query('vacuum (analyze) audit_log');
          await c.query('checkpoint');
        });
        if (kind === 'B') {
          handle = await worker.client.workflow.start<typeof ArchiveTable>('ArchiveTable', {
            taskQueue: worker.taskQueue,
            workflowId: `bench-impact/${database}/${round}`,
            args: [{ database, schema: 'public', table: 'audit_log' }],
          });
        }
        const dir = mkdtempSync(path.join(logRoot, `${kind}${round}-`));
        process.stdout.write(`round ${round} ${kind}: pgbench -R ${RATE} -T ${DURATION_S} ...\n`);
        const summary = await pgbench([
          '-n',
          '-R',
          String(RATE),
          '-T',
          String(DURATION_S),
          '-c',
          String(CLIENTS),
          '-j',
          '2',
          '-l',
          `--log-prefix=${path.join(dir, 'tx')}`,
          database,
        ]);
        let archivedRows = 0;
        if (handle) {
          const progress = await handle.query<ArchiveProgress>('progress');
          archivedRows = progress.totals.rowsDeleted;
          await handle.cancel();
          await handle.result().catch(() => undefined);
          if (progress.state === 'done') {
            process.stdout.write(
              `  note: the archive finished before the phase ended; raise --archive-rows\n`,
            );
          }
        }
        const tps = Number(/tps = ([\d.]+)/.exec(summary)?.[1] ?? NaN);
        phases.push({ kind, round, latenciesMs: readLogs(dir), tps, archivedRows });
      }
    }
  } finally {
    await worker.stop();
    rmSync(logRoot, { recursive: true, force: true });
    await dropDatabase(database);
  }

  const stats = (lat: number[]) => [50, 95, 99].map((p) => percentile(lat, p));
  const settings =
    [
      BATCH_SIZE > 0 && `batch_size ${fmt(BATCH_SIZE)}`,
      PAUSE_MS > 0 && `pause_between_batches_ms ${fmt(PAUSE_MS)}`,
      NICE_RATIO >= 0 && `nice_ratio ${NICE_RATIO}`,
    ]
      .filter(Boolean)
      .join(', ') || 'default settings';
  process.stdout.write(
    `\nbench:impact (pgbench -R ${RATE} -c ${CLIENTS} -s ${SCALE}, ${DURATION_S} s phases, ${ROUNDS} rounds; archive at ${settings})\n\n`,
  );
  printTable([
    ['phase', 'transactions', 'tps', 'p50 ms', 'p95 ms', 'p99 ms', 'archived rows/s'],
    ...phases.map((p) => [
      `${p.kind}${p.round}`,
      fmt(p.latenciesMs.length),
      fmt(p.tps, 1),
      ...stats(p.latenciesMs).map((v) => fmt(v, 2)),
      p.kind === 'B' ? fmt(p.archivedRows / DURATION_S) : '-',
    ]),
  ]);
  const pooled = (kind: 'A' | 'B') =>
    phases
      .filter((p) => p.kind === kind)
      .flatMap((p) => p.latenciesMs)
      .sort((a, b) => a - b);
  const a = stats(pooled('A'));
  const b = stats(pooled('B'));
  const archived = phases.filter((p) => p.kind === 'B').reduce((s, p) => s + p.archivedRows, 0);
  process.stdout.write('\n');
  printTable([
    ['', 'p50 ms', 'p95 ms', 'p99 ms'],
    ['A (no archive)', ...a.map((v) => fmt(v, 2))],
    ['B (archiving)', ...b.map((v) => fmt(v, 2))],
    ['B/A', ...a.map((v, i) => `${fmt(b[i]! / v, 3)}x`)],
  ]);
  process.stdout.write(
    `\np95 B/A: ${fmt(b[1]! / a[1]!, 3)}x (goal: 1.05x or less)\n` +
      `archive rate during B: ${fmt(archived / (DURATION_S * ROUNDS))} rows/s (${fmt(archived)} rows over ${ROUNDS} phases)\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
