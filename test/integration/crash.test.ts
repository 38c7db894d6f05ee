import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { createS3Client } from '../../src/store/client';
import { archiveTableWorkflowId } from '../../src/shared/archive-types';
import { LOCK_GRANTED_SIGNAL } from '../../src/shared/run-types';
import type { ArchiveTable } from '../../workflows';
import {
  archiverLocks,
  auditRowTexts,
  byId,
  countNotBefore,
  readArchive,
  readReceipt,
  type RowText,
} from '../helpers/archive-checks';
import { testConfig, testConfigInput, writeConfigFile } from '../helpers/config';
import { TestDatabase } from '../helpers/database';
import { TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE } from '../helpers/stack';
import { freePort, WorkerProcess } from '../helpers/worker-process';

const ROWS = 50_000;
const DAYS = 10;
const RETENTION_DAYS = 2;
const BATCH_SIZE = 2_000;

const STARTED = temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;

/** An activity of the run that the worker process being watched is executing now. */
interface Running {
  name: string;
  /** Whether it has heartbeated; holdTableLock heartbeats only once it holds the lock. */
  heartbeated: boolean;
}

/** What the history says the run was waiting for when its worker died. */
interface InFlight {
  /** Activities scheduled and not closed (by completion, failure, timeout or cancel). */
  open: string[];
  /** A holdTableLock was open and had not yet told the run it holds the lock. */
  lockNotYetGranted: boolean;
}

/**
 * When to kill the worker process: once the (restarted) worker has run activities of the run
 * for `afterMs`, at the first moment `trigger` matches what it is executing. A kill counts
 * for the plan only if the history, read after the kill, shows the step was really cut off
 * (`landed`); otherwise the plan waits for a later chance. So each step of a batch is
 * interrupted at least once, whatever the speed of the machine.
 */
interface KillPlan {
  what: string;
  afterMs: number;
  trigger: (running: Running) => boolean;
  landed: (inFlight: InFlight) => boolean;
}

const during = (what: string, afterMs: number, ...activities: string[]): KillPlan => ({
  what,
  afterMs,
  trigger: (r) => activities.includes(r.name),
  landed: (f) => f.open.some((name) => activities.includes(name)),
});

const KILLS: KillPlan[] = [
  {
    what: 'while the run takes the table lock',
    afterMs: 0,
    trigger: (r) => r.name === 'holdTableLock' && !r.heartbeated,
    landed: (f) => f.lockNotYetGranted,
  },
  during('during a delete', 1_000, 'deleteBatch'),
  during('during an export', 1_500, 'exportBatch'),
  during('during a read-back of a stored object', 2_000, 'verifyBatch', 'writeDeletionManifest'),
];
/** Kills that miss their moment are retried; this bounds the test if they keep missing. */
const MAX_KILLS = 8;

interface Kill {
  atMs: number;
  aimedAt: string;
  inFlight: InFlight;
}

/** The activities of the run that the given worker process is executing right now. */
async function runningIn(
  handle: WorkflowHandle,
  pid: number,
): Promise<{ status: string; running: Running[] }> {
  const description = await handle.describe();
  const running = (description.raw.pendingActivities ?? [])
    .filter((a) => a.state === STARTED && a.lastWorkerIdentity?.startsWith(`${pid}@`))
    .map((a) => ({
      name: a.activityType?.name ?? '?',
      heartbeated: (a.heartbeatDetails?.payloads?.length ?? 0) > 0,
    }));
  return { status: description.status.name, running };
}

async function inFlightNow(handle: WorkflowHandle): Promise<InFlight> {
  const events = (await handle.fetchHistory()).events ?? [];
  const open = new Map<string, { name: string; eventId: number }>();
  let lastGrant = 0;
  for (const e of events) {
    const eventId = Number(e.eventId?.toString());
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled)
      open.set(String(eventId), { name: scheduled.activityType?.name ?? '?', eventId });
    const closed =
      e.activityTaskCompletedEventAttributes ??
      e.activityTaskFailedEventAttributes ??
      e.activityTaskTimedOutEventAttributes ??
      e.activityTaskCanceledEventAttributes;
    if (closed) open.delete(String(closed.scheduledEventId?.toString()));
    if (e.workflowExecutionSignaledEventAttributes?.signalName === LOCK_GRANTED_SIGNAL)
      lastGrant = eventId;
  }
  return {
    open: [...open.values()].map((a) => a.name),
    lockNotYetGranted: [...open.values()].some(
      (a) => a.name === 'holdTableLock' && a.eventId > lastGrant,
    ),
  };
}

/** An error's message with the messages of all its causes: where a run's failure began. */
function causeChain(err: unknown): string {
  const messages: string[] = [];
  for (let e = err; e instanceof Error; e = e.cause) messages.push(e.message);
  return messages.join(': ');
}

/**
 * Watches the worker until one of the plans' moments comes, SIGKILLs it, and returns what
 * the run was doing then. Throws if the run ends first.
 */
async function killAtNextMoment(
  handle: WorkflowHandle,
  worker: WorkerProcess,
  plans: KillPlan[],
  startedAt: number,
): Promise<Kill> {
  // A restarted worker first waits for Temporal to give up on the dead one's activities
  // (heartbeat or start-to-close timeouts); its clock starts once it really works.
  let resumedAt: number | undefined;
  for (;;) {
    const { status, running } = await runningIn(handle, worker.pid);
    if (status !== 'RUNNING') {
      const end = await handle.result().then(
        (outcome) => JSON.stringify(outcome),
        (err: Error) => causeChain(err),
      );
      throw new Error(
        `the run ended (${status}) before the kills ${plans.map((p) => p.what).join(', ')}: ${end}`,
      );
    }
    if (resumedAt === undefined && running.some((r) => r.name !== 'holdTableLock'))
      resumedAt = Date.now();
    const workedMs = resumedAt === undefined ? 0 : Date.now() - resumedAt;
    const plan = plans.find((p) => workedMs >= p.afterMs && running.some(p.trigger));
    if (plan) {
      await worker.kill();
      // Let any reply the process sent just before it died reach the server.
      await new Promise((r) => setTimeout(r, 300));
      return {
        atMs: Date.now() - startedAt,
        aimedAt: plan.what,
        inFlight: await inFlightNow(handle),
      };
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

// Guarantee 3 (docs/architecture.md): a worker that dies only delays the work; it never loses or
// duplicates a row. The worker here is the real `audit-archiver worker` process, killed
// with SIGKILL (no shutdown hook runs) in the middle of batches and started again.
describe('Crash test: ArchiveTable while its worker process is SIGKILLed and restarted', function () {
  this.timeout(600_000);
  let db: TestDatabase;
  let s3: S3Client;
  let connection: Connection;
  let client: Client;
  let worker: WorkerProcess | undefined;
  let handle: WorkflowHandle<typeof ArchiveTable> | undefined;
  let configFile: string;
  let httpAddress: string;
  const taskQueue = `test-crash-${randomUUID()}`;
  const prefix = `crash-${randomUUID()}/`;
  let original: Map<string, RowText>;

  before(async () => {
    db = await TestDatabase.create();
    await db.query(`create table audit_log (
      id bigint generated always as identity primary key,
      created_at timestamptz not null,
      actor text not null,
      payload jsonb)`);
    await db.query(`create index on audit_log (created_at)`);
    // ROWS rows over DAYS days, through each day; 8 of the 10 days are past retention.
    await db.query(
      `insert into audit_log (created_at, actor, payload)
       select now() - (g % $2::int) * interval '1 day' - (g % 1440) * interval '1 minute'
                    - (g % 997) * interval '1 microsecond',
              'user' || (g % 97),
              jsonb_build_object('n', g, 'note', repeat('x', g % 50), 'q', 'a"b\\c')
         from generate_series(1, $1::int) g`,
      [ROWS, DAYS],
    );
    original = await auditRowTexts(db);
    httpAddress = `127.0.0.1:${await freePort()}`;
    const options = {
      database: db.name,
      prefix,
      taskQueue,
      overrides: (c: ReturnType<typeof testConfigInput>) => {
        c.worker = { http_address: httpAddress, shutdown_grace_seconds: 1 };
        c.defaults = {
          retention_days: RETENTION_DAYS,
          batch_size: BATCH_SIZE,
          pause_between_batches_ms: 0,
        };
      },
    };
    configFile = writeConfigFile(testConfigInput(options));
    s3 = createS3Client(testConfig(options).s3);
    connection = await Connection.connect({ address: TEMPORAL_ADDRESS });
    client = new Client({ connection, namespace: TEMPORAL_NAMESPACE });
  });

  after(async () => {
    await worker?.kill();
    // A run cut short by a failed test must not linger on the server.
    await handle?.terminate('the test is over').catch(() => undefined);
    await connection?.close();
    s3?.destroy();
    await db?.drop();
  });

  it('archives every old row exactly once and unchanged although its worker is SIGKILLed while taking the lock, exporting, reading back and deleting', async () => {
    const ref = { database: db.name, schema: 'public', table: 'audit_log' };
    worker = await WorkerProcess.start(configFile, httpAddress);
    const startedAt = Date.now();
    handle = await client.workflow.start<typeof ArchiveTable>('ArchiveTable', {
      taskQueue,
      workflowId: `${archiveTableWorkflowId(ref)}-crash-${randomUUID()}`,
      args: [ref],
    });

    const kills: Kill[] = [];
    const killLog = () =>
      kills
        .map((k) => `${k.atMs} ms, aimed ${k.aimedAt}: cut off ${k.inFlight.open.join(', ')}`)
        .join('\n');
    let pending = [...KILLS];
    while (pending.length > 0) {
      assert.ok(kills.length < MAX_KILLS, `still to do: ${pending.map((p) => p.what).join(', ')}`);
      const kill = await killAtNextMoment(handle, worker, pending, startedAt).catch(
        (err: Error) => {
          throw new Error(`${err.message}\nkills so far:\n${killLog()}`, { cause: err });
        },
      );
      kills.push(kill);
      pending = pending.filter((p) => !p.landed(kill.inFlight));
      worker = await WorkerProcess.start(configFile, httpAddress);
    }
    const outcome = await handle.result();
    if (process.env.CRASH_TEST_VERBOSE)
      console.log(`${killLog()}\nrun took ${Date.now() - startedAt} ms`);

    assert.equal(outcome.outcome, 'archived', killLog());
    assert.ok(outcome.batches >= 20, `${outcome.batches} batches: the kills hit a long run`);

    const remaining = await auditRowTexts(db);
    const { keys, objects, rows } = await readArchive(s3, prefix);
    const archived = byId(rows);

    // (b) No row is archived twice: no id in two objects, nor twice in one.
    const twice = [...archived].filter(([, copies]) => copies.length > 1);
    assert.deepEqual(
      twice.map(([id, copies]) => `${id} in ${copies.map((c) => c.object).join(', ')}`),
      [],
      killLog(),
    );

    // (a) The table and the archive together hold exactly the original rows, each in one place.
    const inBoth = [...archived.keys()].filter((id) => remaining.has(id));
    assert.deepEqual(inBoth, [], 'no row is both archived and still in the table');
    assert.equal(remaining.size + archived.size, original.size);
    const lost = [...original.keys()].filter((id) => !remaining.has(id) && !archived.has(id));
    assert.deepEqual(lost, [], 'no row is lost');

    // (c) Every archived row is the original row, column by column, as PostgreSQL prints it.
    for (const [id, [copy]] of archived) {
      assert.deepEqual(copy!.row, original.get(id), `archived row ${id} in ${copy!.object}`);
    }
    // Rows still in the table are untouched too.
    for (const [id, row] of remaining) assert.deepEqual(row, original.get(id));

    // (d) Exactly the rows older than the cutoff left the table: none older is left (none
    // changed during the run), and none newer was archived.
    const { stale } = await db.one<{ stale: number }>(
      `select count(*)::int as stale from audit_log where created_at < $1::timestamptz`,
      [outcome.cutoff],
    );
    assert.equal(stale, 0, 'no row older than the cutoff is left');
    const archivedTimes = rows.map((r) => r.row.created_at!);
    assert.equal(await countNotBefore(db, archivedTimes, outcome.cutoff), 0);
    assert.ok(archived.size > 0.75 * ROWS, `${archived.size} rows archived`);

    // The run's own account agrees with what happened, and so does the bucket's audit trail:
    // each object's receipt accounts for all its rows, deleted by that attempt or by an
    // earlier one whose reply was lost in a crash.
    assert.equal(outcome.rowsArchived, archived.size);
    assert.equal(outcome.objects, objects.length);
    assert.equal(outcome.rowsChanged, 0);
    let accounted = 0;
    let deletedByReceipts = 0;
    for (const object of objects) {
      const stem = object.slice(0, -'.jsonl.gz'.length);
      for (const suffix of ['.manifest.json', '.deletion.json', '.deleted.json'])
        assert.ok(keys.includes(stem + suffix), `${stem}${suffix} exists`);
      const receipt = await readReceipt(s3, object);
      assert.equal(receipt.deleted + receipt.alreadyGone, receipt.listed, object);
      accounted += receipt.listed;
      deletedByReceipts += receipt.deleted;
    }
    assert.equal(accounted, archived.size);
    assert.equal(outcome.rowsDeleted, deletedByReceipts);
    assert.equal(await archiverLocks(db), 0, 'the table lock is released');
  });
});
