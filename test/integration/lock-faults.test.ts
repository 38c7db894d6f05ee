import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import pg from 'pg';
import { lockSessionName } from '../../src/postgres/lock-session';
import type { ConfigInput } from '../../src/config/schema';
import { LOCK_CLASS_ID } from '../../src/postgres/sql/table-lock';
import type {
  ArchiveProgress,
  ArchiveTableOutcome,
  LockHolder,
} from '../../src/shared/archive-types';
import { LOCK_GRANTED_SIGNAL } from '../../src/shared/run-types';
import { createS3Client } from '../../src/store/client';
import type { ArchiveTable } from '../../workflows';
import {
  archiverLocks,
  auditRowTexts,
  byId,
  readArchive,
  type RowText,
} from '../helpers/archive-checks';
import { testConfig, testConfigInput, writeConfigFile } from '../helpers/config';
import { TestDatabase } from '../helpers/database';
import { PG, TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE } from '../helpers/stack';
import { startTestWorker, uniqueTaskQueue, type TestWorker } from '../helpers/worker';
import { freePort, waitFor, WorkerProcess } from '../helpers/worker-process';

type Archived = Extract<ArchiveTableOutcome, { outcome: 'archived' }>;

const RETENTION_DAYS = 2;
/** Above 10 s the pause between batches is a durable timer: only the lock activity runs then. */
const DURABLE_PAUSE_MS = 11_000;

/** The usual audit table: `days` old days of `perDay` rows each, and 50 rows within retention. */
async function createTable(db: TestDatabase, days: number, perDay: number): Promise<void> {
  await db.query(`create table audit_log (
    id bigint generated always as identity primary key,
    created_at timestamptz not null,
    actor text not null,
    payload jsonb)`);
  await db.query(
    `insert into audit_log (created_at, actor, payload)
     select date_trunc('day', now()) - interval '3 days' - (g % $1::int) * interval '1 day'
              + (g % 1000) * interval '1 minute',
            'user' || (g % 7), jsonb_build_object('n', g)
       from generate_series(1, $2::int) g`,
    [days, days * perDay],
  );
  await db.query(
    `insert into audit_log (created_at, actor, payload)
     select now() - g * interval '1 minute', 'recent', jsonb_build_object('n', g)
       from generate_series(1, 50) g`,
  );
}

interface Setup {
  db: TestDatabase;
  prefix: string;
  taskQueue: string;
  leaseSeconds: number;
  pauseMs: number;
  batchSize: number;
  httpAddress?: string;
  /** worker.max_concurrent_activities of a worker process. */
  maxActivities?: number;
}

/** The lease and pacing a test needs, over the usual test config. */
function overridesFor(s: Setup): (c: ConfigInput) => void {
  return (c) => {
    c.databases[0]!.lock_lease_seconds = s.leaseSeconds;
    c.defaults = {
      retention_days: RETENTION_DAYS,
      batch_size: s.batchSize,
      pause_between_batches_ms: s.pauseMs,
      // Only the pause the test asks for: no throttle wait on a busy test machine.
      throttle: { max_slowdown: null, max_lock_waiters: null },
    };
    if (s.httpAddress) {
      c.worker = {
        http_address: s.httpAddress,
        shutdown_grace_seconds: 1,
        ...(s.maxActivities && { max_concurrent_activities: s.maxActivities }),
      };
    }
  };
}

const optionsOf = (s: Setup) => ({
  database: s.db.name,
  prefix: s.prefix,
  taskQueue: s.taskQueue,
  overrides: overridesFor(s),
});

/** The session holding an archiver table lock in the test's database, if any. */
async function lockHolder(
  db: TestDatabase,
): Promise<{ pid: number; application_name: string } | undefined> {
  const rows = await db.query<{ pid: number; application_name: string }>(
    `select a.pid, a.application_name
       from pg_locks l join pg_stat_activity a on a.pid = l.pid
      where l.locktype = 'advisory' and l.granted and l.classid = $1::int::oid
        and l.database = (select oid from pg_database where datname = current_database())`,
    [LOCK_CLASS_ID],
  );
  assert.ok(rows.length <= 1, `one table lock at most: ${JSON.stringify(rows)}`);
  return rows[0];
}

async function sessionExists(db: TestDatabase, pid: number): Promise<boolean> {
  const { n } = await db.one<{ n: number }>(
    'select count(*)::int as n from pg_stat_activity where pid = $1::int',
    [pid],
  );
  return n > 0;
}

function startArchive(
  client: Client,
  taskQueue: string,
  db: TestDatabase,
  workflowId: string,
): Promise<WorkflowHandle<typeof ArchiveTable>> {
  return client.workflow.start<typeof ArchiveTable>('ArchiveTable', {
    taskQueue,
    workflowId,
    args: [{ database: db.name, schema: 'public', table: 'audit_log' }],
  });
}

/** Waits until the run has archived a batch, holds the table lock and rests on a durable timer. */
async function pausingWithLock(
  handle: WorkflowHandle<typeof ArchiveTable>,
  db: TestDatabase,
): Promise<{ pid: number; application_name: string }> {
  return waitFor(
    'the run to hold the lock and pause after its first batch',
    async () => {
      const progress = await handle.query<ArchiveProgress>('progress');
      if (progress.state !== 'pausing' || progress.totals.batches < 1) return undefined;
      return lockHolder(db);
    },
    { timeoutMs: 90_000, intervalMs: 100 },
  );
}

function asArchived(outcome: ArchiveTableOutcome): Archived {
  assert.equal(outcome.outcome, 'archived', JSON.stringify(outcome));
  return outcome;
}

/**
 * Every row older than the runs' cutoff left the table and is archived exactly once, as it
 * was; every newer row is still in the table.
 */
async function assertArchivedOnce(
  db: TestDatabase,
  s3: S3Client,
  prefix: string,
  original: Map<string, RowText>,
): Promise<number> {
  const remaining = await auditRowTexts(db);
  const archived = byId((await readArchive(s3, prefix)).rows);
  for (const [id, copies] of archived) {
    assert.equal(copies.length, 1, `row ${id} in ${copies.map((c) => c.object).join(', ')}`);
    assert.deepEqual(copies[0]!.row, original.get(id), `row ${id} archived as it was`);
    assert.ok(!remaining.has(id), `row ${id} is archived and still in the table`);
  }
  for (const [id, row] of original) {
    if (row.actor === 'recent') assert.deepEqual(remaining.get(id), row, `recent row ${id} stays`);
    else assert.ok(archived.has(id), `old row ${id} is archived`);
  }
  return archived.size;
}

// Guarantee 6 (docs/architecture.md), issue 10 item 7: a holder that freezes or loses its host releases the
// table by itself within a bounded time (the lock session's lease), and a run recognises a
// lock session of its own that a frozen attempt left behind. The holders here are real
// `audit-archiver worker` processes, frozen with SIGSTOP as a VM pause would freeze them.
describe('Table lock: a frozen holder (worker processes, real PostgreSQL and Temporal)', function () {
  this.timeout(240_000);
  const procs: WorkerProcess[] = [];
  const workers: TestWorker[] = [];
  const handles: WorkflowHandle[] = [];
  const dbs: TestDatabase[] = [];
  let connection: Connection;
  let client: Client;
  let s3: S3Client;

  before(async () => {
    connection = await Connection.connect({ address: TEMPORAL_ADDRESS });
    client = new Client({ connection, namespace: TEMPORAL_NAMESPACE });
    s3 = createS3Client(testConfig({ database: 'unused', prefix: 'unused/' }).s3);
  });

  after(async () => {
    // SIGKILL ends a stopped process too.
    for (const p of procs) await p.kill();
    for (const h of handles) await h.terminate('the test is over').catch(() => undefined);
    for (const w of workers) await w.stop();
    await connection?.close();
    s3?.destroy();
    for (const db of dbs) await db.drop();
  });

  async function database(days: number, perDay: number): Promise<TestDatabase> {
    const db = await TestDatabase.create();
    dbs.push(db);
    await createTable(db, days, perDay);
    return db;
  }

  async function workerProcess(setup: Setup): Promise<WorkerProcess> {
    const httpAddress = `127.0.0.1:${await freePort()}`;
    const file = writeConfigFile(testConfigInput(optionsOf({ ...setup, httpAddress })));
    const proc = await WorkerProcess.start(file, httpAddress);
    procs.push(proc);
    return proc;
  }

  it('frees the lock of a frozen worker within its lease, and another run then takes the table and archives it', async () => {
    const leaseSeconds = 5;
    const db = await database(3, 100);
    const original = await auditRowTexts(db);
    const base = { db, prefix: `lock-lease-${randomUUID()}/`, leaseSeconds, batchSize: 200 };
    const frozenSetup = { ...base, taskQueue: uniqueTaskQueue(), pauseMs: DURABLE_PAUSE_MS };
    const otherSetup = { ...base, taskQueue: uniqueTaskQueue(), pauseMs: 0 };
    const [frozen, other] = await Promise.all([
      workerProcess(frozenSetup),
      startTestWorker(testConfig(optionsOf(otherSetup))),
    ]);
    workers.push(other);

    const first = await startArchive(
      client,
      frozenSetup.taskQueue,
      db,
      `lock-frozen-${randomUUID()}`,
    );
    handles.push(first);
    const held = await pausingWithLock(first, db);
    frozen.child.kill('SIGSTOP');
    const stoppedAt = Date.now();

    // The frozen worker says nothing more on its lock session: the lease ends the session.
    await waitFor(
      'the frozen holder to lose the table lock',
      async () => ((await lockHolder(db)) ? undefined : true),
      { timeoutMs: leaseSeconds * 1000 + 10_000, intervalMs: 100 },
    );
    const freedAfterMs = Date.now() - stoppedAt;
    assert.ok(
      freedAfterMs <= leaseSeconds * 1000 + 2_000,
      `the lock came free ${freedAfterMs} ms after the holder froze; the lease is ${leaseSeconds} s`,
    );
    assert.equal(await sessionExists(db, held.pid), false, 'the frozen holder’s session ended');

    // A run of the same table from another worker and task queue, while the first is frozen.
    const second = await startArchive(
      client,
      otherSetup.taskQueue,
      db,
      `lock-second-${randomUUID()}`,
    );
    handles.push(second);
    const secondOutcome = asArchived(await second.result());
    assert.ok(secondOutcome.rowsDeleted > 0, JSON.stringify(secondOutcome));

    // The frozen worker wakes up: its run finds nothing left to take and ends cleanly.
    frozen.child.kill('SIGCONT');
    const firstOutcome = asArchived(await first.result());
    assert.equal(firstOutcome.batches, 1, JSON.stringify(firstOutcome));

    assert.equal(await assertArchivedOnce(db, s3, base.prefix, original), 300);
    assert.equal(firstOutcome.rowsDeleted + secondOutcome.rowsDeleted, 300);
    assert.equal(await archiverLocks(db), 0, 'no lock is left behind');
  });

  it('recognises its own lock session left behind by a frozen worker, ends it and completes on another worker', async () => {
    // A lease far longer than the run needs: only the run itself can end its old session in time.
    const leaseSeconds = 120;
    const db = await database(1, 300);
    const original = await auditRowTexts(db);
    const setup = {
      db,
      prefix: `lock-own-${randomUUID()}/`,
      taskQueue: uniqueTaskQueue(),
      leaseSeconds,
      batchSize: 200,
      pauseMs: 0,
    };
    // One activity at a time: the first worker holds the lock and asks for no other activity,
    // so the frozen process has no activity poll open that would swallow the run's next step.
    const frozen = await workerProcess({ ...setup, maxActivities: 1 });
    const handle = await startArchive(client, setup.taskQueue, db, `lock-own-${randomUUID()}`);
    handles.push(handle);
    const held = await waitFor(
      'the run to hold the table lock',
      async () => {
        const announced = await announcedHolder(handle);
        const holder = await lockHolder(db);
        return holder?.pid === announced.pid ? holder : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 100 },
    );
    frozen.child.kill('SIGSTOP');
    const stoppedAt = Date.now();

    // The run's lock activity times out on its heartbeat; its session still holds the lock.
    await waitFor(
      'the lock activity of the frozen worker to time out',
      async () => ((await lockActivityTimedOut(handle)) ? true : undefined),
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    assert.equal((await lockHolder(db))?.pid, held.pid, 'the frozen session still holds the lock');

    // Another worker process on the same task queue takes the run over.
    const successor = await workerProcess(setup);
    const outcome = asArchived(await handle.result());
    const elapsedMs = Date.now() - stoppedAt;
    assert.ok(
      elapsedMs < (leaseSeconds - 10) * 1000,
      `the run took ${elapsedMs} ms after the freeze: too close to the ${leaseSeconds} s lease to tell who ended the old session`,
    );
    assert.equal(
      await sessionExists(db, held.pid),
      false,
      'the run ended its frozen lock session before the lease did',
    );
    assert.match(successor.log, /ending this run.s own earlier lock session/);
    assert.equal(outcome.batches, 2, JSON.stringify(outcome));
    assert.equal(outcome.rowsDeleted, 300);
    assert.equal(await assertArchivedOnce(db, s3, setup.prefix, original), 300);
    assert.equal(await archiverLocks(db), 0, 'no lock is left behind');
  });
});

/** Whether the run's history shows a holdTableLock activity that timed out. */
async function lockActivityTimedOut(handle: WorkflowHandle): Promise<boolean> {
  const events = (await handle.fetchHistory()).events ?? [];
  const lockActivities = new Set(
    events
      .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'holdTableLock')
      .map((e) => String(e.eventId)),
  );
  return events.some((e) =>
    lockActivities.has(String(e.activityTaskTimedOutEventAttributes?.scheduledEventId)),
  );
}

/** The holder the run's lock activity announced to its workflow (the signal in the history). */
async function announcedHolder(handle: WorkflowHandle): Promise<LockHolder> {
  const events = (await handle.fetchHistory()).events ?? [];
  const signal = events.find(
    (e) => e.workflowExecutionSignaledEventAttributes?.signalName === LOCK_GRANTED_SIGNAL,
  )?.workflowExecutionSignaledEventAttributes;
  const payload = signal?.input?.payloads?.[0];
  assert.ok(payload, 'the lock activity signalled its holder');
  return defaultPayloadConverter.fromPayload<LockHolder>(payload);
}

// Guarantee 6: only the holder's own run can release the table. The release is a NOTIFY on
// the holder session's channel; it must carry the holder's token, which only the run knows.
describe('Table lock: release by NOTIFY (real PostgreSQL and Temporal)', function () {
  this.timeout(120_000);
  let db: TestDatabase;
  let worker: TestWorker;
  let handle: WorkflowHandle<typeof ArchiveTable> | undefined;

  before(async () => {
    db = await TestDatabase.create();
    await createTable(db, 2, 100);
    const setup = {
      db,
      prefix: `lock-notify-${randomUUID()}/`,
      taskQueue: uniqueTaskQueue(),
      leaseSeconds: 30,
      batchSize: 200,
      pauseMs: DURABLE_PAUSE_MS,
    };
    worker = await startTestWorker(testConfig(optionsOf(setup)));
  });

  after(async () => {
    await handle?.terminate('the test is over').catch(() => undefined);
    await worker?.stop();
    await db?.drop();
  });

  it('keeps the lock on a NOTIFY without the holder’s token (its backend_start, empty, another token) and releases it on the token', async () => {
    handle = await startArchive(worker.client, worker.taskQueue, db, `lock-notify-${randomUUID()}`);
    const held = await pausingWithLock(handle, db);
    const holder = await announcedHolder(handle);
    assert.equal(holder.pid, held.pid);
    const channel = `audit_archiver_release_${held.pid}`;
    const notify = (payload: string) =>
      db.query('select pg_notify($1::text, $2::text)', [channel, payload]);

    for (const payload of [holder.backendStart, '', randomUUID()]) await notify(payload);
    // Notifications reach a listening session at once; give the holder time to act on them.
    await new Promise((r) => setTimeout(r, 1_500));
    assert.deepEqual(await lockHolder(db), held, 'the same session still holds the lock');

    // The holder's own token does release it: the NOTIFYs above reached a listening session.
    await notify(holder.token);
    await waitFor(
      'the holder to release the lock on its token',
      async () => ((await lockHolder(db)) ? undefined : true),
      { timeoutMs: 5_000, intervalMs: 50 },
    );
    // The run, cancelled, ends cleanly without the lock.
    await handle.cancel();
    await assert.rejects(handle.result(), { name: 'WorkflowFailedError' });
    assert.equal(await archiverLocks(db), 0);
  });
});

// activities/lock.ts names the lock session so that the run recognises its own: the name it
// compares with must be the one PostgreSQL stores and shows in pg_stat_activity, whatever the
// workflow id holds.
describe('Table lock: the lock session name as PostgreSQL stores it', function () {
  /** The application_name PostgreSQL stores for a session that asked for `name`. */
  async function stored(name: string): Promise<string> {
    const client = new pg.Client({ ...PG, database: 'postgres', application_name: name });
    await client.connect();
    try {
      const { rows } = await client.query<{ name: string }>(
        `select application_name as name from pg_stat_activity where pid = pg_backend_pid()`,
      );
      return rows[0]!.name;
    } finally {
      await client.end();
    }
  }

  it('equals what PostgreSQL stores for workflow ids with unicode, a tab and long table names', async () => {
    const owner = randomUUID();
    const mark = owner.replace(/-/g, '').slice(-12);
    for (const id of [
      'archive/compta/public.journal_des_accès_utilisateurs_très_long_nom_de_table_2026',
      'archive/日本語/データ.監査ログ',
      'archive/db/ops.tab\there — ünïcødé',
      `archive/db/public.${'x'.repeat(70)}`,
    ]) {
      const name = lockSessionName(owner, id);
      assert.ok(name.startsWith(`audit-archiver lock ${mark} archive/`), name);
      // Printable ASCII and at most 63 bytes: what PostgreSQL keeps unchanged, whatever its
      // version (it cuts longer names and rewrites other bytes, as '?' up to 15, as \xNN since 16).
      assert.match(name, /^[\x20-\x7e]{1,63}$/, id);
      assert.equal(await stored(name), name, id);
    }
  });
});
