import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { S3Client } from '@aws-sdk/client-s3';
import { defaultPayloadConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { MockActivityEnvironment } from '@temporalio/testing';
import pg from 'pg';
import { archiveActivities } from '../../activities/archive';
import { schemaActivities } from '../../activities/schema';
import type { Config } from '../../src/config';
import { PoolRegistry } from '../../src/postgres/pool';
import { LOCK_CLASS_ID } from '../../src/postgres/sql/table-lock';
import type { ArchiveTableOutcome, Cursor, LockHolder } from '../../src/shared/archive-types';
import {
  RESTORE_PAGE_SIZE,
  restoreWorkflowId,
  type ReleaseHoldsResult,
  type RestoreInput,
  type RestorePlan,
  type RestoreResult,
} from '../../src/shared/restore-types';
import type { TableArchive } from '../../src/store/archive-store';
import { createS3Client } from '../../src/store/client';
import {
  DELETION_RECEIPT_FORMAT,
  HOLD_RELEASE_FORMAT,
  OBJECT_MANIFEST_FORMAT,
  type HoldRelease,
} from '../../src/store/documents';
import { holdKey, holdReleaseKey } from '../../src/store/layout';
import { mapLimit } from '../../src/util/concurrency';
import type { ArchiveTable, ReleaseHolds, Restore } from '../../workflows';
import { exportFrom, quietLogger, runActivity, storeOf, watermarkOf } from '../helpers/activity';
import { listAll, readBytes, readJsonObject } from '../helpers/bucket';
import { runCli } from '../helpers/cli';
import { testConfig, testConfigInput, writeConfigFile } from '../helpers/config';
import { TestDatabase } from '../helpers/database';
import { PG } from '../helpers/stack';
import { startTestWorker, uniqueTaskQueue, type TestWorker } from '../helpers/worker';

const MAX_PAYLOAD_BYTES = 64 * 1024;

/** The text form of each row (`t::text`), keyed by id. */
async function rowTexts(db: TestDatabase, table: string): Promise<Map<number, string>> {
  const rows = await db.query<{ id: number; row: string }>(
    `select id, t::text as row from ${table} t order by id`,
  );
  return new Map(rows.map((r) => [r.id, r.row]));
}

/** Each row of an (id, created_at, note) table as the archive's JSON line, keyed by id. */
async function archiveLines(db: TestDatabase, table: string): Promise<Map<number, string>> {
  const rows = await db.query<{ id: number; line: string }>(
    `select id, json_object(array['id', 'created_at', 'note'],
                            array[id::text, created_at::text, note])::text as line
       from ${table} order by id`,
  );
  return new Map(rows.map((r) => [r.id, r.line]));
}

// Issue 10, paths 2, 3 and 9: a restore writes exactly the row versions the archive's deletes
// removed, holds accumulate until released through a workflow, a restore into the source
// respects the table lock, and a restore's history stays small however large the archive.
// Real PostgreSQL, MinIO and Temporal; the Restore, ArchiveTable and ReleaseHolds workflows
// on an in-process worker, and the CLI as a separate process.
describe('Restore safety: what a restore writes, holds, the lock, paging (real stack)', function () {
  this.timeout(300_000);
  let db: TestDatabase;
  let config: Config;
  /** The CLI's config: its S3 endpoint is a closed port, so the CLI cannot reach the bucket. */
  let cliConfigFile: string;
  let worker: TestWorker;
  let pools: PoolRegistry;
  let s3: S3Client;
  const prefix = `restore-safety-${randomUUID()}/`;
  const env = new MockActivityEnvironment({}, { logger: quietLogger });

  before(async () => {
    db = await TestDatabase.create();
    for (const table of ['changed', 'ranges', 'locked', 'paged']) {
      await db.query(
        `create table ${table} (id int primary key, created_at timestamptz not null, note text)`,
      );
    }
    const options = {
      database: db.name,
      prefix,
      taskQueue: uniqueTaskQueue(),
      tables: [{ name: 'changed' }, { name: 'ranges' }, { name: 'locked' }, { name: 'paged' }],
      overrides: (c: ReturnType<typeof testConfigInput>) => {
        c.defaults = { retention_days: 7, batch_size: 1000, pause_between_batches_ms: 0 };
      },
    };
    config = testConfig(options);
    const cliConfig = testConfigInput(options);
    cliConfig.s3.endpoint = 'http://127.0.0.1:9';
    cliConfigFile = writeConfigFile(cliConfig);
    worker = await startTestWorker(config);
    pools = new PoolRegistry(config.databases, {});
    s3 = createS3Client(config.s3);
  });

  after(async () => {
    await worker?.stop();
    await pools?.close();
    s3?.destroy();
    await db?.drop();
  });

  const ref = (table: string) => ({ database: db.name, schema: 'public', table });
  const archiveOf = (table: string): TableArchive => storeOf(config, s3).table(ref(table));
  const count = async (table: string, where = 'true') =>
    (await db.one<{ n: number }>(`select count(*)::int as n from ${table} where ${where}`)).n;

  function restore(input: Omit<RestoreInput, 'database'>, workflowId = `rs-${randomUUID()}`) {
    return worker.client.workflow.execute<typeof Restore>('Restore', {
      taskQueue: worker.taskQueue,
      workflowId,
      args: [{ database: db.name, ...input }],
    });
  }

  async function restored(input: Omit<RestoreInput, 'database'>, workflowId?: string) {
    const result: RestoreResult = await restore(input, workflowId);
    if (result.outcome !== 'restored') assert.fail(`expected restored, got ${result.outcome}`);
    return result;
  }

  async function archive(table: string) {
    const outcome: ArchiveTableOutcome = await worker.client.workflow.execute<typeof ArchiveTable>(
      'ArchiveTable',
      {
        taskQueue: worker.taskQueue,
        workflowId: `rs-archive-${table}-${randomUUID()}`,
        args: [{ database: db.name, table }],
      },
    );
    if (outcome.outcome !== 'archived') assert.fail(`expected archived, got ${outcome.outcome}`);
    return outcome;
  }

  function listHolds(table: string): Promise<ReleaseHoldsResult> {
    return worker.client.workflow.execute<typeof ReleaseHolds>('ReleaseHolds', {
      taskQueue: worker.taskQueue,
      workflowId: `rs-holds-${randomUUID()}`,
      args: [{ database: db.name, table, dryRun: true }],
    });
  }

  /**
   * `audit-archiver restore` as a separate process, with a config whose S3 endpoint is a
   * closed port and with credentials the store does not know: anything the CLI itself sent
   * to the bucket would fail.
   */
  const cli = (...args: string[]) =>
    runCli(
      ['restore', '--config', cliConfigFile, '-d', db.name, ...args],
      { AWS_ACCESS_KEY_ID: 'not-a-key', AWS_SECRET_ACCESS_KEY: 'not-a-secret' },
      120_000,
    );

  /** Five rows on each of `days` consecutive UTC days well past retention; returns the days. */
  async function insertOldDays(table: string, days: number): Promise<string[]> {
    await db.query(
      `insert into ${table}
       select g, date_trunc('day', now()) - interval '30 days' + ((g - 1) / 5) * interval '1 day'
                 + g * interval '1 minute', 'row ' || g
         from generate_series(1, $1::int) g`,
      [days * 5],
    );
    return (
      await db.query<{ day: string }>(
        `select distinct created_at::date::text as day from ${table} order by 1`,
      )
    ).map((r) => r.day);
  }

  it('restores only the row versions a delete removed: with fail or overwrite into the source, a row changed before its delete and the rows of a run that never deleted keep their live content; --all-lines restores every line', async () => {
    const acts = archiveActivities({ config, env: {}, pools, store: storeOf(config, s3) });
    const schema = await runActivity(
      env,
      schemaActivities({ config, env: {}, pools, store: storeOf(config, s3) }),
      'snapshotSchema',
      ref('changed'),
    );
    // Day 1: rows 1-4, archived by a run that deletes; day 2: rows 11-12, exported and
    // verified by a run that failed before its delete.
    await db.query(
      `insert into changed select id, timestamptz '2020-01-02 10:00:00+00' + id * interval '1 second', 'v1'
         from generate_series(1, 4) id`,
    );
    await db.query(
      `insert into changed select id, timestamptz '2020-01-03 10:00:00+00' + id * interval '1 second', 'v1'
         from generate_series(11, 12) id`,
    );
    const exportInput = (run: string, cursor: Cursor) => ({
      table: ref('changed'),
      run,
      batch: 1,
      cutoff: new Date().toISOString(),
      cursor,
      schemaHash: schema.schemaHash,
    });
    const failedRun = await exportFrom(
      env,
      acts,
      exportInput('failed-run', { day: '2020-01-03', afterKey: null }),
    );
    assert.ok(failedRun);
    assert.equal(failedRun.rowCount, 2);
    await runActivity(env, acts, 'verifyBatch', {
      table: ref('changed'),
      object: failedRun.object,
    });
    // That run failed here; its rows live on, and one of them changes.
    await db.query(`update changed set note = 'live v2' where id = 11`);

    const goodRun = await exportFrom(
      env,
      acts,
      exportInput('good-run', { day: null, afterKey: null }),
    );
    assert.ok(goodRun);
    assert.equal(goodRun.rowCount, 4);
    // Row 3 changes between the export and the delete: the delete must leave it.
    await db.query(`update changed set note = 'changed after export' where id = 3`);
    await runActivity(env, acts, 'verifyBatch', { table: ref('changed'), object: goodRun.object });
    const deletedVersions = await rowTexts(db, 'changed');
    const liveBefore = new Map([3, 11, 12].map((id) => [id, deletedVersions.get(id)!]));
    // The delete runs under the table lock, held here by a session of the test's own.
    const lockSession = new pg.Client({ ...PG, database: db.name });
    await lockSession.connect();
    try {
      const { rows } = await lockSession.query<{ pid: number; backend_start: string }>(
        `select pg_advisory_lock($1::int, 'public.changed'::regclass::oid::int4), pg_backend_pid() as pid,
                (select backend_start::text from pg_stat_activity where pid = pg_backend_pid()) as backend_start`,
        [LOCK_CLASS_ID],
      );
      const lock: LockHolder = {
        pid: rows[0]!.pid,
        backendStart: rows[0]!.backend_start,
        token: 'test',
      };
      const { listed, deleted, changed, alreadyGone } = await runActivity(
        env,
        acts,
        'deleteBatch',
        {
          table: ref('changed'),
          object: goodRun.object,
          lock,
          watermark: watermarkOf(goodRun),
        },
      );
      assert.deepEqual(
        { listed, deleted, changed, alreadyGone },
        { listed: 4, deleted: 3, changed: 1, alreadyGone: 0 },
      );
    } finally {
      await lockSession.end();
    }
    assert.deepEqual([...(await rowTexts(db, 'changed')).keys()], [3, 11, 12]);
    const expectAfterRestore = async () => {
      const now = await rowTexts(db, 'changed');
      assert.deepEqual([...now.keys()], [1, 2, 3, 4, 11, 12]);
      for (const id of [1, 2, 4]) assert.equal(now.get(id), deletedVersions.get(id), `row ${id}`);
      for (const id of [3, 11, 12]) assert.equal(now.get(id), liveBefore.get(id), `row ${id}`);
    };

    // Default conflict strategy (fail): nothing conflicts, since no stale version is written.
    const failing = await restored({ table: 'changed' });
    assert.equal(failing.plan.objects, 2);
    assert.equal(failing.plan.toRestore, 1);
    assert.match(
      failing.plan.decision[0]!,
      /1 of 2 objects, 3 rows \(the rows the archive deleted\)/,
    );
    assert.deepEqual(
      [failing.objects, failing.rows, failing.inserted, failing.overwritten, failing.skipped],
      [1, 3, 3, 0, 0],
    );
    await expectAfterRestore();

    // Overwrite, into the source: the deleted versions win over what holds their keys now,
    // and the live rows (3, 11) are not replaced by the old versions the objects hold.
    await db.query(`delete from changed where id in (2, 4)`);
    await db.query(`update changed set note = 'reused key' where id = 1`);
    const overwriting = await restored({
      table: 'changed',
      conflict: 'overwrite',
      ignoreWatermark: true,
    });
    assert.deepEqual(
      [overwriting.objects, overwriting.rows, overwriting.inserted, overwriting.overwritten],
      [1, 3, 2, 1],
    );
    await expectAfterRestore();

    // --all-lines into a side table: every line of both objects, exactly as archived.
    await db.query(`create table changed_side (like changed including all)`);
    const side = await cli(
      '-t',
      'changed',
      '--restore-all',
      '--all-lines',
      '--target-table',
      'changed_side',
    );
    assert.equal(side.code, 0, side.stdout + side.stderr);
    assert.match(side.stdout, /2 of 2 objects, 6 rows \(every archived line\)/);
    const archivedLines = new Map<number, string>();
    for (const object of [goodRun.object, failedRun.object]) {
      const stored = gunzipSync(await readBytes(s3, object)).toString('utf8');
      for (const line of stored.split('\n').filter((l) => l !== '')) {
        archivedLines.set(Number((JSON.parse(line) as { id: string }).id), line);
      }
    }
    assert.deepEqual(await archiveLines(db, 'changed_side'), archivedLines);
    assert.match(archivedLines.get(3)!, /"note" : "v1"/, 'the side table holds the old version');
  });

  it('keeps every restore’s hold until released through ReleaseHolds: two restores, both ranges survive an archive run, the CLI releases without touching the bucket', async () => {
    const days = await insertOldDays('ranges', 6);
    assert.equal(days.length, 6);
    assert.equal((await archive('ranges')).rowsDeleted, 30);
    const [a1, a2, b1, b2] = [days[0]!, days[1]!, days[3]!, days[4]!];
    // Both under the workflow id the CLI gives every restore into the table, one after the
    // other: a hold keyed by that id would be replaced by the second restore's.
    const id = restoreWorkflowId(ref('ranges'));
    assert.equal((await restored({ table: 'ranges', startDate: a1, endDate: a2 }, id)).rows, 10);
    assert.equal((await restored({ table: 'ranges', startDate: b1, endDate: b2 }, id)).rows, 10);

    const inForce = await listHolds('ranges');
    assert.equal(inForce.released, false);
    assert.deepEqual(
      inForce.holds.map((h) => h.days).sort((x, y) => x[0]!.first.localeCompare(y[0]!.first)),
      [[{ first: a1, last: a2 }], [{ first: b1, last: b2 }]],
    );
    const listed = await cli('-t', 'ranges', '--list-holds');
    assert.equal(listed.code, 0, listed.stdout + listed.stderr);
    assert.match(listed.stdout, new RegExp(`^held +\\S+ \\(restore\\): ${a1}\\.\\.${a2} `, 'm'));
    assert.match(listed.stdout, new RegExp(`^held +\\S+ \\(restore\\): ${b1}\\.\\.${b2} `, 'm'));

    const whileHeld = await archive('ranges');
    assert.equal(whileHeld.rowsArchived, 0);
    const inRange = (first: string, last: string) =>
      count('ranges', `created_at::date between '${first}' and '${last}'`);
    assert.equal(await inRange(a1, a2), 10, 'the first restore’s rows are still there');
    assert.equal(await inRange(b1, b2), 10, 'the second restore’s rows are still there');

    const released = await cli('-t', 'ranges', '--release-holds');
    assert.equal(released.code, 0, released.stdout + released.stderr);
    assert.equal(
      released.stdout.match(/^released \S+ \(restore\): /gm)?.length,
      2,
      released.stdout,
    );
    const keys = new Set((await listAll(s3, archiveOf('ranges').prefix)).map((o) => o.key));
    const location = { prefix, ...ref('ranges') };
    for (const hold of inForce.holds) {
      assert.ok(keys.has(holdKey(location, hold.id)), `hold ${hold.id} is kept`);
      const release = await readJsonObject<HoldRelease>(s3, holdReleaseKey(location, hold.id));
      assert.equal(release.format, HOLD_RELEASE_FORMAT);
      assert.equal(release.id, hold.id);
      // Written by the ReleaseHolds workflow's activity on the worker, not by the CLI.
      assert.match(release.workflowId, /^release-holds\//);
    }
    assert.deepEqual((await listHolds('ranges')).holds, []);

    assert.equal((await archive('ranges')).rowsDeleted, 20);
    assert.equal(await count('ranges'), 0);
  });

  it('refuses to restore into the source while another session holds the table lock, naming it, and writes nothing', async () => {
    await insertOldDays('locked', 2);
    assert.equal((await archive('locked')).rowsDeleted, 10);
    const bucketBefore = await listAll(s3, archiveOf('locked').prefix);
    const holder = new pg.Client({
      ...PG,
      database: db.name,
      application_name: 'restore-safety lock holder',
    });
    await holder.connect();
    try {
      const { rows } = await holder.query<{ pid: number }>(
        `select pg_advisory_lock($1::int, 'public.locked'::regclass::oid::int4), pg_backend_pid() as pid`,
        [LOCK_CLASS_ID],
      );
      const pid = rows[0]!.pid;
      const result = await restore({ table: 'locked' });
      if (result.outcome !== 'locked') assert.fail(`expected locked, got ${result.outcome}`);
      assert.match(result.heldBy, new RegExp(`^restore-safety lock holder \\(pid ${pid},`));

      const refused = await cli('-t', 'locked', '--restore-all');
      assert.equal(refused.code, 1, refused.stdout + refused.stderr);
      assert.match(
        refused.stdout,
        new RegExp(
          `^restore refused: the table is locked by restore-safety lock holder \\(pid ${pid},`,
          'm',
        ),
      );
      assert.equal(await count('locked'), 0);
      assert.deepEqual(await listAll(s3, archiveOf('locked').prefix), bucketBefore);
    } finally {
      await holder.end();
    }
    // Once the lock is free the same restore goes through: the lock alone refused it.
    assert.equal((await restored({ table: 'locked' })).inserted, 10);
  });

  it('restores an archive of 300 objects page by page: its plan lists one page of them and every payload in its history stays under 64 KiB', async () => {
    const OBJECTS = 300;
    const ROWS_PER_OBJECT = 2;
    const OBJECTS_PER_DAY = 3;
    const schema = await runActivity(
      env,
      schemaActivities({ config, env: {}, pools, store: storeOf(config, s3) }),
      'snapshotSchema',
      ref('paged'),
    );
    // The lines the archive would hold, made by PostgreSQL itself; the rows are "deleted"
    // (never inserted): only the bucket has them.
    const lines = await db.query<{
      id: number;
      day: string;
      ts: string;
      micros: string;
      line: string;
    }>(
      `with r as (
         select g as id,
                timestamptz '2024-01-01 00:00:00+00'
                  + ((g - 1) / ${ROWS_PER_OBJECT * OBJECTS_PER_DAY}) * interval '1 day'
                  + g * interval '1 second' as created_at,
                'note ' || g as note
           from generate_series(1, ${OBJECTS * ROWS_PER_OBJECT}) g)
       select id, created_at::date::text as day, created_at::text as ts,
              (extract(epoch from created_at) * 1000000)::bigint::text as micros,
              json_object(array['id', 'created_at', 'note'],
                          array[id::text, created_at::text, note])::text as line
         from r order by id`,
    );
    const archive = archiveOf('paged');
    const batches = Array.from({ length: OBJECTS }, (_, i) =>
      lines.slice(i * ROWS_PER_OBJECT, (i + 1) * ROWS_PER_OBJECT),
    );
    await mapLimit(batches, 32, async (rows) => {
      const first = rows[0]!;
      const last = rows.at(-1)!;
      const batch = (first.id - 1) / ROWS_PER_OBJECT + 1;
      const object = archive.dataKey(first.day, 'synthetic', batch);
      const text = rows.map((r) => `${r.line}\n`).join('');
      const body = gzipSync(text);
      const now = new Date().toISOString();
      assert.equal(
        await archive.uploadData(object, Readable.from([body]), new AbortController().signal),
        'created',
      );
      await archive.saveManifest({
        format: OBJECT_MANIFEST_FORMAT,
        object,
        ...ref('paged'),
        schemaHash: schema.schemaHash,
        schemaKey: schema.key,
        day: first.day,
        rowCount: rows.length,
        primaryKey: { column: 'id', first: String(first.id), last: String(last.id) },
        timestamp: { column: 'created_at', min: first.ts, max: last.ts, maxMicros: last.micros },
        sha256: createHash('sha256').update(body).digest('hex'),
        bytes: body.length,
        uncompressedBytes: Buffer.byteLength(text),
        maxLineBytes: Math.max(...rows.map((r) => Buffer.byteLength(r.line))),
        encoding: 'jsonl+gzip',
        cutoff: now,
        workflowId: 'synthetic',
        run: 'synthetic',
        batch,
        adopted: false,
        createdAt: now,
      });
      await archive.saveReceipt({
        format: DELETION_RECEIPT_FORMAT,
        object,
        listed: rows.length,
        deleted: rows.length,
        changed: 0,
        alreadyGone: 0,
        deletedKeys: rows.map((r) => String(r.id)),
        txid: String(1000 + batch),
        workflowId: 'synthetic',
        deletedAt: now,
      });
    });

    const workflowId = `rs-paged-${randomUUID()}`;
    const result = await restored({ table: 'paged' }, workflowId);
    assert.deepEqual(
      [result.objects, result.rows, result.inserted],
      [OBJECTS, OBJECTS * ROWS_PER_OBJECT, OBJECTS * ROWS_PER_OBJECT],
    );
    const restoredLines = await archiveLines(db, 'paged');
    assert.deepEqual(restoredLines, new Map(lines.map((l) => [l.id, l.line])));

    // Every run of the workflow (it may continue as new), every payload of every event.
    let largest = { bytes: 0, event: '' };
    let payloads = 0;
    const plans: RestorePlan[] = [];
    let pages = 0;
    let runId: string | undefined;
    for (;;) {
      const history = await worker.client.workflow.getHandle(workflowId, runId).fetchHistory();
      const events = history.events ?? [];
      const scheduled = new Map<string, string>();
      for (const event of events) {
        const type = temporal.api.enums.v1.EventType[event.eventType ?? 0] ?? 'unknown';
        for (const size of payloadSizes(event)) {
          payloads++;
          if (size > largest.bytes) largest = { bytes: size, event: type };
        }
        const encoded = temporal.api.history.v1.HistoryEvent.encode(event).finish().length;
        assert.ok(encoded < MAX_PAYLOAD_BYTES, `${type} event is ${encoded} bytes`);
        const name = event.activityTaskScheduledEventAttributes?.activityType?.name;
        if (name) scheduled.set(String(event.eventId), name);
        if (name === 'restorePage') pages++;
        const completed = event.activityTaskCompletedEventAttributes;
        if (completed && scheduled.get(String(completed.scheduledEventId)) === 'planRestore') {
          plans.push(
            defaultPayloadConverter.fromPayload<RestorePlan>(completed.result!.payloads![0]!),
          );
        }
      }
      const previous =
        events[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId ?? undefined;
      if (!previous) break;
      runId = previous;
    }
    assert.ok(payloads > OBJECTS, `${payloads} payloads seen`);
    assert.ok(
      largest.bytes < MAX_PAYLOAD_BYTES,
      `largest payload: ${largest.bytes} bytes in ${largest.event}`,
    );
    assert.equal(plans.length, 1);
    const plan = plans[0]!;
    assert.deepEqual(
      [plan.objects, plan.toRestore, plan.rows],
      [OBJECTS, OBJECTS, OBJECTS * ROWS_PER_OBJECT],
    );
    assert.equal(plan.page.length, RESTORE_PAGE_SIZE);
    assert.equal(plan.more, true);
    assert.equal(pages, Math.ceil(OBJECTS / RESTORE_PAGE_SIZE), 'restorePage activities');
  });
});

/** The sizes of the payloads (`{ metadata, data }`) anywhere inside a history event. */
function payloadSizes(value: unknown): number[] {
  if (value === null || typeof value !== 'object') return [];
  if (value instanceof Uint8Array) return [];
  const record = value as Record<string, unknown>;
  if (record.data instanceof Uint8Array && 'metadata' in record) return [record.data.length];
  return Object.values(record).flatMap(payloadSizes);
}
