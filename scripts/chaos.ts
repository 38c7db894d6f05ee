/**
 * npm run chaos: the fault harness (docs/reliability.md). Runs the real archiver (worker
 * processes from the sources, the product's workflows) against a private stack of real
 * servers, and injects faults while archive runs are in flight: network faults through
 * toxiproxy, S3 error replies, SIGKILL / SIGSTOP of workers, restarts of Temporal, MinIO and
 * PostgreSQL, pg_terminate_backend of the archiver's sessions. Meanwhile an application
 * inserts, updates and deletes rows of the archived table. After each cycle the archive is
 * validated, restored into a side table and compared with what the application knows it
 * wrote. Ends with one line:
 *
 *   cycles N, faults F, rows lost 0, rows duplicated in the table 0, stale versions restored 0, validate problems 0
 *
 * and exits 1 when any count is above zero or anything failed. `--seed N` replays a plan.
 */
import { killAllSync } from './chaos/processes';
import { runCycle } from './chaos/cycle';
import { RowModel } from './chaos/model';
import { FAULT_KINDS } from './chaos/faults';
import { parseOptions, USAGE, UsageError, type ChaosOptions } from './chaos/options';
import { Report } from './chaos/report';
import { Rng } from './chaos/rng';
import { Orchestrator } from './chaos/runs';
import { ChaosStack, SCENARIO } from './chaos/stack';
import { AppTraffic } from './chaos/traffic';
import { errorText, freePort, say, withDeadline } from './chaos/util';
import { Workers } from './chaos/workers';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

interface Running {
  stack?: ChaosStack;
  workers?: Workers;
  orchestrator?: Orchestrator;
}

async function setUp(options: ChaosOptions, report: Report, running: Running) {
  const stack = await ChaosStack.start(
    Rng.stream(options.seed, 's3-proxy'),
    (s) => (running.stack = s),
  );
  say(
    `private stack up in ${stack.dir}: PostgreSQL :${stack.pg.port}, MinIO :${stack.minio.port}, Temporal ${stack.temporal.address}; the workers go through toxiproxy (postgres :${stack.pgProxyPort}, s3 :${stack.s3ProxyPort})`,
  );
  await stack.pg.withClient('postgres', (c) => c.query(`create database ${SCENARIO.database}`));
  await stack.pg.withClient(SCENARIO.database, async (c) => {
    await c.query(`create table public.${SCENARIO.table} (
      id bigint generated always as identity primary key,
      created_at timestamptz not null,
      actor text not null,
      action text not null,
      payload jsonb)`);
    await c.query(`create index on public.${SCENARIO.table} (created_at)`);
  });
  const model = new RowModel();
  const traffic = new AppTraffic(
    stack.pg,
    SCENARIO.database,
    SCENARIO.table,
    model,
    Rng.stream(options.seed, 'application'),
    {
      opsPerSecond: options.opsPerSecond,
      retentionDays: SCENARIO.retentionDays,
    },
  );
  for (let left = options.initialRows; left > 0; left -= 500)
    await traffic.insertOld(Math.min(500, left));
  say(`table ${SCENARIO.database} public.${SCENARIO.table}: ${model.size} old rows`);

  const workers = new Workers(stack.workerSettings(options.batchSize), [
    await freePort(),
    await freePort(),
  ]);
  running.workers = workers;
  await workers.a.start();
  say(`${workers.a.label} running on task queue ${SCENARIO.taskQueue}`);
  const orchestrator = new Orchestrator(stack.temporal.address, SCENARIO.taskQueue);
  running.orchestrator = orchestrator;
  void report;
  return { stack, workers, traffic, model, orchestrator, s3: stack.minio.client() };
}

async function tearDown(running: Running, keep: boolean): Promise<void> {
  await running.orchestrator?.close();
  await running.workers?.stopAll().catch(() => undefined);
  await running.stack?.teardown(keep);
  if (keep && running.stack) say(`kept ${running.stack.dir} (data and logs of every server)`);
}

async function main(): Promise<number> {
  let options: ChaosOptions;
  try {
    options = parseOptions(
      process.argv.slice(2),
      FAULT_KINDS.map((k) => k.name),
    );
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`error: ${err.message}\n${USAGE}\n`);
    return 2;
  }
  const report = new Report();
  const running: Running = {};
  const replay = `npm run chaos --${options.quick ? ' --quick' : ''} --seed ${options.seed}${process.argv.includes('--cycles') ? ` --cycles ${options.cycles}` : ''}${process.argv.includes('--faults') ? ` --faults ${options.faultsPerCycle}` : ''}${options.only ? ` --only ${options.only.join(',')}` : ''}`;
  say(
    `chaos: seed ${options.seed} (replay: ${replay}); ${options.cycles} cycles of ${options.faultsPerCycle} faults`,
  );

  // The cluster is a pg_ctl daemon and the servers run in process groups of their own: if
  // the harness dies anyway, nothing of its stack may outlive it.
  process.on('exit', () => {
    killAllSync();
    running.stack?.teardownSync();
  });
  let interrupted = false;
  const stopOn = (signal: NodeJS.Signals) =>
    process.once(signal, () => {
      if (interrupted) return;
      interrupted = true;
      report.failure(`interrupted by ${signal}`);
      void tearDown(running, options.keep).finally(() => {
        report.print(options.seed);
        process.exit(130);
      });
    });
  stopOn('SIGINT');
  stopOn('SIGTERM');

  try {
    await withDeadline('the whole chaos run', options.totalTimeoutMs, async () => {
      const env = await setUp(options, report, running);
      try {
        if (Rng.stream(options.seed, 'worker B').chance(0.5)) {
          await env.workers.b.start();
          say(`${env.workers.b.label} joins task queue ${SCENARIO.taskQueue}`);
        }
        for (let cycle = 1; cycle <= options.cycles && !interrupted; cycle++) {
          await runCycle({ ...env, options, report }, cycle);
        }
        if (env.model.uncertainStatements > 0)
          report.note(
            `${env.model.uncertainStatements} application statements had an outcome that could not be learnt; their rows were not judged`,
          );
      } finally {
        env.s3.destroy();
      }
    });
  } catch (err) {
    report.failure(`the harness stopped: ${errorText(err)}`);
  }
  if (interrupted) return new Promise<number>(() => undefined);
  await tearDown(running, options.keep);
  report.print(options.seed);
  return report.clean ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`chaos: ${errorText(err)}\n`);
    process.exit(1);
  },
);
