import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { NativeConnection, Worker } from '@temporalio/worker';
import pg from 'pg';
import { createActivities } from '../../activities';
import { throttleActivities } from '../../activities/throttle';
import { LatencyProbe } from '../../src/postgres/latency-probe';
import { readDatabaseSignals } from '../../src/postgres/signals';
import type { Config } from '../../src/config';
import { PoolRegistry } from '../../src/postgres/pool';
import { createS3Client } from '../../src/store/client';
import type { ArchiveProgress, ArchiveTableOutcome } from '../../src/shared/archive-types';
import type { ThrottleSignalName, ThrottleSignals } from '../../src/shared/throttle';
import type { ArchiveTable } from '../../workflows';
import { quietLogger, runActivity, storeOf } from '../helpers/activity';
import { testConfig } from '../helpers/config';
import { createAuditTable, TestDatabase } from '../helpers/database';
import { PG, TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE } from '../helpers/stack';
import { waitFor } from '../helpers/worker-process';
import { uniqueTaskQueue, testSinks, workflowBundle } from '../helpers/worker';

const SIGNAL_TABLES = ['t_lag', 't_wal', 't_vacuum', 't_locks'];

/** A session of its own on the test database, for holding locks and running vacuums. */
async function session(db: TestDatabase): Promise<pg.Client> {
  const client = new pg.Client({ ...PG, database: db.name });
  await client.connect();
  return client;
}

// docs/performance-tuning.md: before each batch the archiver reads the database's load signals and waits on
// a durable timer while one is over its limit, saying why; the wait ends when the signal
// clears. The reader runs its real SQL against the real catalog views; replica lag, a WAL
// archive backlog and autovacuum cannot be produced on demand on one test server, so the
// workflow-level tests give the worker a signal reader (ActivityDeps.readSignals) that adds
// those readings to the real ones. Lock waits, the slowdown and the rate ceilings are real.
describe('adaptive throttling (real stack)', function () {
  this.timeout(300_000);
  let db: TestDatabase;
  let config: Config;
  let hookFile: string;
  let worker: Worker;
  let running: Promise<void>;
  let client: Client;
  let connection: Connection;
  let nativeConnection: NativeConnection;
  let pools: PoolRegistry;
  const sessions: pg.Client[] = [];
  const prefix = `throttle-${randomUUID()}/`;
  // Configured databases on the same physical one, each with its own throttle
  // overrides: per-database limits are what the config promises.
  const names = { signals: '', rows: '', bytes: '', nice: '', slow: '', impact: '' };

  const inject = (signals: Partial<ThrottleSignals>) =>
    writeFileSync(hookFile, JSON.stringify(signals));

  before(async () => {
    db = await TestDatabase.create();
    names.signals = `${db.name}_signals`;
    names.rows = `${db.name}_rows`;
    names.bytes = `${db.name}_bytes`;
    names.nice = `${db.name}_nice`;
    names.slow = `${db.name}_slow`;
    names.impact = `${db.name}_impact`;
    for (const table of SIGNAL_TABLES) await createAuditTable(db, { table, rows: 300 });
    // One day of old rows each, so that every batch but the last is full.
    for (const [table, rows] of [
      ['t_rows', 600],
      ['t_bytes', 600],
      ['t_nice', 600],
      ['t_slow', 1000],
      ['t_impact', 600],
    ] as const) {
      await createAuditTable(db, { table, rows: 0 });
      await db.query(
        `insert into ${table} (created_at, actor, action, payload)
         select now() - interval '10 days' - g * interval '1 second', 'user' || g, 'update',
                jsonb_build_object('n', g, 'pad', repeat(md5(g::text), 4))
           from generate_series(1, $1::int) g`,
        [rows],
      );
    }
    // The archiver's own DELETE becomes slow once, at the fourth batch of t_slow: a real
    // slowdown of its own statements, as a busy database would cause.
    await db.query(`create table slow_once (fired boolean not null)`);
    await db.query(`insert into slow_once values (false)`);
    await db.query(`create function slow_delete() returns trigger language plpgsql as $$
      begin
        if (select count(*) from t_slow) <= 400 then
          update slow_once set fired = true where not fired;
          if found then perform pg_sleep(5); end if;
        end if;
        return null;
      end $$`);
    await db.query(
      `create trigger slow_delete before delete on t_slow for each statement execute function slow_delete()`,
    );

    hookFile = path.join(mkdtempSync(path.join(tmpdir(), 'aa-throttle-')), 'signals.json');
    inject({});
    const fast = { pause_ms: 100, max_pause_ms: 300 };
    config = testConfig({
      database: names.signals,
      prefix,
      taskQueue: uniqueTaskQueue(),
      overrides: (c) => {
        c.defaults = { retention_days: 7, batch_size: 200, pause_between_batches_ms: 0 };
        const base = c.databases[0]!;
        const tables = (list: string[]) =>
          list.map((name) => ({ name, timestamp_column: 'created_at', primary_key: 'id' }));
        c.databases = [
          {
            ...base,
            name: names.signals,
            dbname: db.name,
            tables: tables(SIGNAL_TABLES),
            throttle: { ...fast, max_lock_waiters: 0, max_slowdown: null },
          },
          {
            ...base,
            name: names.rows,
            dbname: db.name,
            tables: tables(['t_rows']),
            throttle: { ...fast, max_slowdown: null, max_rows_per_second: 100 },
          },
          {
            ...base,
            name: names.bytes,
            dbname: db.name,
            tables: tables(['t_bytes']),
            throttle: { ...fast, max_slowdown: null, max_bytes_per_second: 2_000 },
          },
          {
            ...base,
            name: names.nice,
            dbname: db.name,
            tables: tables(['t_nice']),
            // Rests are capped at max_pause_ms: high enough here not to cut them.
            throttle: { ...fast, max_pause_ms: 30_000, max_slowdown: null, nice_ratio: 2 },
          },
          {
            ...base,
            name: names.slow,
            dbname: db.name,
            tables: tables(['t_slow']),
            throttle: { ...fast, max_slowdown: 3 },
          },
          {
            ...base,
            name: names.impact,
            dbname: db.name,
            tables: tables(['t_impact']),
            throttle: {
              ...fast,
              max_pause_ms: 30_000,
              max_slowdown: null,
              max_active_sessions: 2,
              max_rest_ratio: 4,
            },
          },
        ];
      },
    });

    nativeConnection = await NativeConnection.connect({ address: TEMPORAL_ADDRESS });
    connection = await Connection.connect({ address: TEMPORAL_ADDRESS });
    client = new Client({ connection, namespace: TEMPORAL_NAMESPACE });
    pools = new PoolRegistry(config.databases, {});
    worker = await Worker.create({
      connection: nativeConnection,
      namespace: TEMPORAL_NAMESPACE,
      taskQueue: config.temporal.task_queue,
      workflowBundle: await workflowBundle(),
      sinks: testSinks(),
      activities: createActivities({
        config,
        env: {},
        pools,
        // The real reader, with the readings the test writes to hookFile on top.
        readSignals: async (client, table) => ({
          ...(await readDatabaseSignals(client, table)),
          ...(JSON.parse(readFileSync(hookFile, 'utf8')) as Partial<ThrottleSignals>),
        }),
        store: storeOf(config, createS3Client(config.s3)),
      }),
    });
    running = worker.run();
  });

  after(async () => {
    for (const s of sessions) await s.end().catch(() => undefined);
    if (worker) {
      worker.shutdown();
      await running;
    }
    await pools?.close();
    await connection?.close();
    await nativeConnection?.close();
    await db?.drop();
  });

  function start(database: string, table: string): Promise<WorkflowHandle<typeof ArchiveTable>> {
    return client.workflow.start<typeof ArchiveTable>('ArchiveTable', {
      taskQueue: config.temporal.task_queue,
      workflowId: `throttle-test/${table}-${randomUUID()}`,
      args: [{ database, schema: 'public', table }],
    });
  }

  /** The progress query once the run says it is throttled by `signal`. */
  function throttledBy(
    handle: WorkflowHandle<typeof ArchiveTable>,
    signal: ThrottleSignalName,
  ): Promise<ArchiveProgress> {
    return waitFor(
      `${handle.workflowId} to be throttled by ${signal}`,
      async () => {
        const p = await handle.query<ArchiveProgress>('progress');
        return p.throttledBy?.includes(signal) ? p : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 50 },
    );
  }

  async function archived(handle: WorkflowHandle<typeof ArchiveTable>) {
    const outcome: ArchiveTableOutcome = await handle.result();
    assert.equal(outcome.outcome, 'archived');
    return outcome;
  }

  /** The summaries of the run's durable timers, from its history. */
  async function timerSummaries(handle: WorkflowHandle<typeof ArchiveTable>): Promise<string[]> {
    const history = await handle.fetchHistory();
    return (history.events ?? [])
      .filter((e) => e.timerStartedEventAttributes)
      .map((e) => {
        const data = e.userMetadata?.summary?.data;
        return data ? (JSON.parse(Buffer.from(data).toString('utf8')) as string) : '';
      });
  }

  /**
   * The rests waited inside a signal read (10 s or less, pacing only): the `waitMs` of each
   * readThrottleSignals the run scheduled with one, from its history.
   */
  async function restsInReads(handle: WorkflowHandle<typeof ArchiveTable>): Promise<number[]> {
    const history = await handle.fetchHistory();
    return (history.events ?? []).flatMap((e) => {
      const scheduled = e.activityTaskScheduledEventAttributes;
      if (scheduled?.activityType?.name !== 'readThrottleSignals') return [];
      const data = scheduled.input?.payloads?.[0]?.data;
      const input = data
        ? (JSON.parse(Buffer.from(data).toString('utf8')) as { waitMs?: number })
        : {};
      return input.waitMs ? [input.waitMs] : [];
    });
  }

  /** The activity types the run scheduled, in order, from its history. */
  async function activities(handle: WorkflowHandle<typeof ArchiveTable>): Promise<string[]> {
    const history = await handle.fetchHistory();
    return (history.events ?? []).flatMap((e) => {
      const name = e.activityTaskScheduledEventAttributes?.activityType?.name;
      return name ? [name] : [];
    });
  }

  const count = async (table: string) =>
    (await db.one<{ n: number }>(`select count(*)::int as n from ${table}`)).n;

  describe('the signal reader, against the real catalog views', () => {
    const env = new MockActivityEnvironment({}, { logger: quietLogger });
    let acts: ReturnType<typeof throttleActivities>;
    const ref = () => ({ database: names.signals, schema: 'public', table: 't_vacuum' });

    before(() => {
      acts = throttleActivities({
        config,
        env: {},
        pools,
        store: storeOf(config, createS3Client(config.s3)),
      });
    });

    it('reads a quiet server as quiet, with the database limits after its overrides', async () => {
      const { signals, limits } = await runActivity(env, acts, 'readThrottleSignals', {
        table: ref(),
      });
      assert.equal(signals.replicaLagMs, null, 'no replica streams from the test server');
      assert.equal(typeof signals.walReadyFiles, 'number', 'a superuser may list archive_status');
      assert.equal(signals.walArchiverFailing, false);
      assert.equal(signals.vacuumRunning, false);
      assert.equal(signals.lockWaiters, 0);
      assert.equal(signals.activeSessions, 0);
      assert.ok(
        typeof signals.probeMs === 'number' && signals.probeMs > 0 && signals.probeMs < 1_000,
        `probe ${signals.probeMs} ms`,
      );
      assert.equal(limits.maxLockWaiters, 0, 'the database override');
      assert.equal(limits.maxReplicaLagMs, 10_000, 'the default');
    });

    it('counts other sessions running a statement, not the archiver’s own probe session', async () => {
      const busy = await session(db);
      sessions.push(busy);
      const sleeping = busy.query('select pg_sleep(30)').catch(() => undefined);
      const { signals } = await waitFor('the running statement to be seen', async () => {
        const r = await runActivity(env, acts, 'readThrottleSignals', { table: ref() });
        return r.signals.activeSessions === 1 ? r : undefined;
      });
      assert.equal(signals.activeSessions, 1);
      // The probe's round trips run on a session of their own, named as the archiver's.
      const probes = await db.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity
          where datname = current_database() and application_name = 'audit-archiver'
            and query = 'select 1'`,
      );
      assert.ok(probes[0]!.n >= 1, 'a probe session of this worker is there, idle');
      await db.query(`select pg_cancel_backend(pid) from pg_stat_activity
                       where datname = current_database() and query = 'select pg_sleep(30)'`);
      await sleeping;
    });

    it('reads the probe of a database it cannot reach as unknown, not as a failure', async () => {
      const probe = new LatencyProbe();
      try {
        const unreachable = { host: '127.0.0.1', port: 1, user: 'postgres', database: 'x' };
        assert.equal(await probe.probe('nowhere', unreachable), null);
        const ms = await probe.probe(db.name, { ...PG, database: db.name });
        assert.ok(typeof ms === 'number' && ms > 0, `probe ${ms} ms`);
      } finally {
        await probe.close();
      }
    });

    it('counts a session waiting for a lock held by another', async () => {
      const holder = await session(db);
      const waiter = await session(db);
      sessions.push(holder, waiter);
      await holder.query('begin');
      await holder.query('lock table t_lag in access exclusive mode');
      const blocked = waiter.query('select count(*) from t_lag');
      const { signals } = await waitFor('the waiter to be seen', async () => {
        const r = await runActivity(env, acts, 'readThrottleSignals', { table: ref() });
        return r.signals.lockWaiters === 1 ? r : undefined;
      });
      assert.equal(signals.lockWaiters, 1);
      await holder.query('commit');
      await blocked;
    });

    it('sees a vacuum working on the table (and not one on another table)', async () => {
      const vacuum = await session(db);
      sessions.push(vacuum);
      await db.query('delete from t_vacuum where id % 2 = 0');
      // Cost-based delay makes a manual VACUUM crawl, long enough to be seen in progress.
      await vacuum.query('set vacuum_cost_delay = 100');
      await vacuum.query('set vacuum_cost_limit = 1');
      const { pid } = (await vacuum.query<{ pid: number }>('select pg_backend_pid() as pid'))
        .rows[0]!;
      const running = vacuum.query('vacuum t_vacuum').catch(() => undefined);
      try {
        await waitFor('the vacuum to be seen', async () => {
          const r = await runActivity(env, acts, 'readThrottleSignals', { table: ref() });
          return r.signals.vacuumRunning ? true : undefined;
        });
        const other = await runActivity(env, acts, 'readThrottleSignals', {
          table: { ...ref(), table: 't_lag' },
        });
        assert.equal(other.signals.vacuumRunning, false);
      } finally {
        await db.query('select pg_cancel_backend($1::int)', [pid]);
        await running;
      }
    });
  });

  const injected: [ThrottleSignalName, string, Partial<ThrottleSignals>][] = [
    ['replica lag', 't_lag', { replicaLagMs: 60_000 }],
    ['wal archive backlog', 't_wal', { walReadyFiles: 500 }],
    ['autovacuum', 't_vacuum', { vacuumRunning: true }],
  ];
  for (const [signal, table, values] of injected) {
    it(`pauses before any batch while ${signal} is over its limit, and goes on once it clears`, async () => {
      inject(values);
      const before = await count(table);
      const handle = await start(names.signals, table);
      try {
        const progress = await throttledBy(handle, signal);
        assert.equal(progress.state, 'throttled');
        assert.ok(progress.throttleReason, 'says why');
        assert.ok(progress.throttledUntil, 'says until when');
        assert.equal(await count(table), before, 'nothing deleted while throttled');
        const details = await handle.query<{ currentDetails: string }>(
          '__temporal_workflow_metadata',
        );
        assert.match(details.currentDetails, new RegExp(`^Throttled by ${signal} until `));
      } finally {
        inject({});
      }
      const outcome = await archived(handle);
      assert.ok(outcome.rowsDeleted > 0);
      assert.equal(outcome.rowsDeleted, before - (await count(table)));
      assert.ok((await timerSummaries(handle)).includes(`throttled: ${signal}`));
    });
  }

  it('pauses while sessions wait for a lock (a real one) and goes on once they stop', async () => {
    const holder = await session(db);
    const waiter = await session(db);
    sessions.push(holder, waiter);
    await holder.query('begin');
    await holder.query('lock table t_wal in access exclusive mode');
    const blocked = waiter.query('select count(*) from t_wal');
    const before = await count('t_locks');
    const handle = await start(names.signals, 't_locks');
    try {
      const progress = await throttledBy(handle, 'lock waits');
      assert.match(progress.throttleReason!, /1 sessions waiting for locks > 0/);
      assert.equal(await count('t_locks'), before, 'nothing deleted while throttled');
    } finally {
      await holder.query('commit');
      await blocked;
    }
    const outcome = await archived(handle);
    assert.equal(outcome.rowsDeleted, before - (await count('t_locks')));
  });

  it('keeps to max_rows_per_second by waiting after each batch, and says so', async () => {
    const handle = await start(names.rows, 't_rows');
    const progress = await throttledBy(handle, 'rows per second');
    assert.match(progress.throttleReason!, /200 rows in \d+ ms is over 100 rows\/s/);
    const outcome = await archived(handle);
    assert.equal(outcome.rowsDeleted, 600);
    // 3 batches of 200 rows at 100 rows/s: the first two are followed by rate waits of
    // about 2 s, waited inside the next signal read (no durable timer for a short rest).
    const waits = await restsInReads(handle);
    assert.ok(waits.length >= 2, `${waits.length} rate waits`);
    assert.deepEqual(await timerSummaries(handle), []);
  });

  it('keeps to max_bytes_per_second by waiting after each batch, and says so', async () => {
    const handle = await start(names.bytes, 't_bytes');
    const progress = await throttledBy(handle, 'bytes per second');
    assert.match(progress.throttleReason!, /\d+ bytes in \d+ ms is over 2000 bytes\/s/);
    const outcome = await archived(handle);
    assert.equal(outcome.rowsDeleted, 600);
  });

  it('rests nice_ratio times each batch’s work after it, and says so', async () => {
    const handle = await start(names.nice, 't_nice');
    const progress = await throttledBy(handle, 'nice ratio');
    const [, worked, rest] = /worked (\d+) ms; nice_ratio 2 rests (\d+) ms/.exec(
      progress.throttleReason!,
    )!;
    assert.equal(Number(rest), Math.ceil(Number(worked) * 2));
    const outcome = await archived(handle);
    assert.equal(outcome.rowsDeleted, 600);
    // 3 batches of 200 rows: a rest follows each of the first two. The third export saw that
    // no eligible row was left, so the run ends there: no rest, no export that finds nothing.
    // Each rest (under 10 s) is waited inside the next signal read, not on a timer.
    const rests = await restsInReads(handle);
    assert.equal(rests.length, 2);
    assert.deepEqual(await timerSummaries(handle), []);
    const scheduled = await activities(handle);
    assert.equal(scheduled.filter((a) => a === 'exportBatch').length, 3);
    // One signal reading before the first batch and one after each rest; the others come
    // with each delete's result.
    assert.equal(scheduled.filter((a) => a === 'readThrottleSignals').length, 3);
  });

  it('rests after each batch while the database is over its impact budget, and says so', async () => {
    // More sessions at work than max_active_sessions (2) for the whole run.
    inject({ activeSessions: 5 });
    try {
      const handle = await start(names.impact, 't_impact');
      const progress = await throttledBy(handle, 'database impact');
      assert.match(progress.throttleReason!, /the impact controller's ratio 1 rests \d+ ms/);
      const outcome = await archived(handle);
      assert.equal(outcome.rowsDeleted, 600);
      // 3 batches: rests after the first two (their ratios, 1 then 2: test/unit/throttle.test.ts).
      const rests = await restsInReads(handle);
      assert.equal(rests.length, 2, `rests ${rests.join(', ')}`);
    } finally {
      inject({});
    }
  });

  it('pauses when its own statements slow down (pt-archiver --sleep-coef idea), then goes on', async () => {
    const handle = await start(names.slow, 't_slow');
    const outcome = await archived(handle);
    assert.equal(outcome.rowsDeleted, 1000);
    const { fired } = await db.one<{ fired: boolean }>('select fired from slow_once');
    assert.ok(fired, 'one delete was slowed down');
    assert.ok(
      (await timerSummaries(handle)).some((s) => s.includes('statement slowdown')),
      'the slow batch was followed by a slowdown wait',
    );
  });
});
