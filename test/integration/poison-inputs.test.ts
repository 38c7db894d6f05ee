import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { createGzip } from 'node:zlib';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ActivityFailure, ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../../activities';
import type { Config } from '../../src/config';
import type { ConfigInput } from '../../src/config/schema';
import { PoolRegistry } from '../../src/postgres/pool';
import { archiveTableWorkflowId, type ArchiveTableOutcome } from '../../src/shared/archive-types';
import { DocumentError, NON_RETRYABLE_ERROR_TYPES } from '../../src/shared/errors';
import type { ArchiveRunResult } from '../../src/shared/run-types';
import type { ResolvedTableRef } from '../../src/shared/table-ref';
import { createS3Client } from '../../src/store/client';
import type { ObjectManifest } from '../../src/store/documents';
import { deletionManifestKey, holdKey, manifestKey } from '../../src/store/layout';
import type { ArchiveAll, ArchiveTable, Validate } from '../../workflows';
import { exportFrom, quietLogger, runActivity, storeOf, watermarkOf } from '../helpers/activity';
import { archiverLocks, readArchive } from '../helpers/archive-checks';
import { readBytes, readJsonObject } from '../helpers/bucket';
import { runCli } from '../helpers/cli';
import { testConfig, testConfigInput, writeConfigFile } from '../helpers/config';
import { TestDatabase } from '../helpers/database';
import { BUCKET } from '../helpers/stack';
import { startTestWorker, uniqueTaskQueue, type TestWorker } from '../helpers/worker';

const RETENTION_DAYS = 2;

type Archived = Extract<ArchiveTableOutcome, { outcome: 'archived' }>;
type Row = Record<string, string | null>;

/** The test config: retention, one batch per day, no pacing or throttle waits. */
function overrides(c: ConfigInput): void {
  c.defaults = {
    retention_days: RETENTION_DAYS,
    batch_size: 5_000,
    pause_between_batches_ms: 0,
    throttle: { max_slowdown: null, max_lock_waiters: null },
  };
}

function configFor(
  db: TestDatabase,
  prefix: string,
  taskQueue: string,
  tables: { name: string; primary_key?: string }[],
) {
  return { database: db.name, prefix, taskQueue, tables, overrides };
}

function refOf(db: TestDatabase, table: string): ResolvedTableRef {
  return { database: db.name, schema: 'public', table };
}

/** An audit table of the usual shape: `rows` rows over the three days past retention, 10 recent. */
async function createSmallTable(db: TestDatabase, table: string, rows: number): Promise<void> {
  await db.query(`create table ${table} (
    id bigint generated always as identity primary key,
    created_at timestamptz not null,
    actor text not null,
    payload jsonb)`);
  await db.query(
    `insert into ${table} (created_at, actor, payload)
     select now() - interval '3 days' - (g % 3) * interval '1 day', 'user' || g % 7, jsonb_build_object('n', g)
       from generate_series(1, $1::int) g
     union all
     select now() - g * interval '1 minute', 'recent', jsonb_build_object('n', g)
       from generate_series(1, 10) g`,
    [rows],
  );
}

/** The rows of a table as text, keyed by the given column's text (or `null`). */
async function rowsOf(db: TestDatabase, table: string, key: string): Promise<Row[]> {
  return db.query<Row>(
    `select t.${key}::text as key, t.created_at::text as created_at, t.note from ${table} t order by t.${key}`,
  );
}

// Guarantee 12 (docs/architecture.md), issue 10 item 8: rows the archive cannot take (a timestamp of -infinity
// or before year 1, a NULL in a unique key that allows it) are left in the table and counted
// in the run's result; the rest of the table, and every other table, still archives.
describe('Poison inputs: out-of-range timestamps and NULL keys (real PostgreSQL, MinIO and Temporal)', function () {
  this.timeout(120_000);
  const prefix = `poison-rows-${randomUUID()}/`;
  let db: TestDatabase;
  let worker: TestWorker;
  let s3: S3Client;

  before(async () => {
    db = await TestDatabase.create();
    const old = `now() - interval '3 days' - (g % 3) * interval '1 day' - (g % 600) * interval '1 minute'`;
    await db.query(`create table odd_times (
      id bigint generated always as identity primary key,
      created_at timestamptz not null,
      note text)`);
    await db.query(
      `insert into odd_times (created_at, note)
       select ${old}, 'old ' || g from generate_series(1, 60) g
       union all select now() - g * interval '1 minute', 'recent' from generate_series(1, 10) g
       union all values ('-infinity'::timestamptz, 'minus infinity'),
                        ('4713-01-01 00:00:00+00 BC', 'oldest BC'),
                        ('0001-12-31 23:59:59.999999+00 BC', 'last instant BC'),
                        ('0044-03-15 12:00:00+00 BC', 'ides of March'),
                        ('0001-01-01 00:00:00+00', 'first instant AD'),
                        ('infinity', 'plus infinity')`,
    );
    await db.query(`create table null_keys (
      uid bigint unique,
      created_at timestamptz not null,
      note text)`);
    await db.query(
      `insert into null_keys (uid, created_at, note)
       select g, ${old}, 'old ' || g from generate_series(1, 50) g
       union all select null, ${old}, 'old without key' from generate_series(1, 5) g
       union all select null, now() - g * interval '1 minute', 'recent without key' from generate_series(1, 3) g
       union all select 1000 + g, now() - g * interval '1 minute', 'recent' from generate_series(1, 5) g`,
    );
    await createSmallTable(db, 'audit_log', 60);
    const config = testConfig(
      configFor(db, prefix, uniqueTaskQueue(), [
        { name: 'odd_times' },
        { name: 'null_keys', primary_key: 'uid' },
        { name: 'audit_log' },
      ]),
    );
    worker = await startTestWorker(config);
    s3 = createS3Client(config.s3);
  });

  after(async () => {
    await worker?.stop();
    s3?.destroy();
    await db?.drop();
  });

  it('archives every other old row, leaves -infinity, BC and NULL-key rows in their tables, counts them, and archives the other table', async () => {
    const before = {
      odd: await rowsOf(db, 'odd_times', 'id'),
      nullKeys: await rowsOf(db, 'null_keys', 'uid'),
    };
    const result = await worker.client.workflow.execute<typeof ArchiveAll>('ArchiveAll', {
      taskQueue: worker.taskQueue,
      workflowId: `poison-rows-${randomUUID()}`,
      args: [{ database: db.name }],
    });
    assert.equal(result.failed, 0, JSON.stringify(result));
    const outcomes = new Map<string, Archived>();
    for (const table of ['odd_times', 'null_keys', 'audit_log']) {
      const entry = result.tables.find((t) => t.table === table);
      assert.equal(entry?.outcome, 'archived', JSON.stringify(entry));
      const outcome = await worker.client.workflow
        .getHandle<typeof ArchiveTable>(archiveTableWorkflowId(refOf(db, table)))
        .result();
      assert.equal(outcome.outcome, 'archived', JSON.stringify(outcome));
      outcomes.set(table, outcome);
      // The run's result says what it left behind, table by table.
      assert.deepEqual(entry.skipped, outcome.skipped, table);
    }

    const archived = (await readArchive(s3, prefix)).rows;
    const archivedOf = (table: string) =>
      archived.filter((r) => r.object.includes(`/public.${table}/`)).map((r) => r.row);

    // odd_times: -infinity and the three BC rows stay and are counted; year 1 is archived.
    const odd = outcomes.get('odd_times')!;
    assert.deepEqual(odd.skipped, { nullKey: 0, outOfRange: 4 });
    const oddLeft = await rowsOf(db, 'odd_times', 'id');
    assert.deepEqual(oddLeft.map((r) => r.note).sort(), [
      'ides of March',
      'last instant BC',
      'minus infinity',
      'oldest BC',
      'plus infinity',
      ...Array<string>(10).fill('recent'),
    ]);
    const oddArchived = archivedOf('odd_times');
    const oddExpected = before.odd.filter(
      (r) => r.note!.startsWith('old ') || r.note === 'first instant AD',
    );
    assert.equal(odd.rowsArchived, 61);
    assert.equal(odd.rowsDeleted, 61);
    assert.deepEqual(
      oddArchived
        .map((r) => ({ key: r.id!, created_at: r.created_at!, note: r.note! }))
        .sort(byKey),
      oddExpected.sort(byKey),
    );
    assert.ok(
      oddArchived.some((r) => r.created_at === '0001-01-01 00:00:00+00'),
      'the first instant of year 1 is archived',
    );

    // null_keys: the five old rows without a key stay and are counted; the recent ones are not.
    const nullKeys = outcomes.get('null_keys')!;
    assert.deepEqual(nullKeys.skipped, { nullKey: 5, outOfRange: 0 });
    const keysLeft = await rowsOf(db, 'null_keys', 'uid');
    assert.deepEqual(
      keysLeft
        .filter((r) => r.key === null)
        .map((r) => r.note)
        .sort(),
      [...Array<string>(5).fill('old without key'), ...Array<string>(3).fill('recent without key')],
    );
    assert.equal(keysLeft.filter((r) => r.key !== null).length, 5, 'the recent keyed rows stay');
    const keysArchived = archivedOf('null_keys');
    assert.equal(nullKeys.rowsDeleted, 50);
    assert.deepEqual(
      keysArchived
        .map((r) => ({ key: r.uid!, created_at: r.created_at!, note: r.note! }))
        .sort(byKey),
      before.nullKeys.filter((r) => r.key !== null && r.note!.startsWith('old ')).sort(byKey),
    );

    // The other table of the run archives as usual.
    const plain = outcomes.get('audit_log')!;
    assert.deepEqual(plain.skipped, { nullKey: 0, outOfRange: 0 });
    assert.equal(plain.rowsDeleted, 60);
    assert.equal(archivedOf('audit_log').length, 60);
    assert.equal(await archiverLocks(db), 0);
  });
});

const byKey = (a: Row, b: Row) => Number(a.key) - Number(b.key);

// Issue 10, item 8: a truncated document is one clear, non-retryable error naming its key,
// not a SyntaxError retried forever.
describe('Poison inputs: truncated documents (real PostgreSQL, MinIO and Temporal)', function () {
  this.timeout(120_000);
  const prefix = `poison-docs-${randomUUID()}/`;
  let db: TestDatabase;
  let worker: TestWorker;
  let s3: S3Client;
  let pools: PoolRegistry;

  before(async () => {
    db = await TestDatabase.create();
    await createSmallTable(db, 'held', 30);
    await createSmallTable(db, 'audit_log', 30);
    await createSmallTable(db, 'documents', 30);
    // The worker archives `held` and `audit_log`; `documents` is only worked on by activities.
    const config = testConfig(
      configFor(db, prefix, uniqueTaskQueue(), [{ name: 'held' }, { name: 'audit_log' }]),
    );
    worker = await startTestWorker(config);
    s3 = createS3Client(config.s3);
    pools = new PoolRegistry(config.databases, {});
  });

  after(async () => {
    await worker?.stop();
    await pools?.close();
    s3?.destroy();
    await db?.drop();
  });

  const put = (key: string, body: string | Uint8Array) =>
    s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));

  it('fails the table at once, without retries, naming a truncated hold document, and archives the other table', async () => {
    const ref = refOf(db, 'held');
    const key = holdKey({ prefix, ...ref }, 'x');
    await put(key, '{"format":"audit-archiver/hold@1","id":"x","days":[{"first":"2026-');
    const rowsBefore = await db.one<{ n: number }>('select count(*)::int as n from held');

    const result: ArchiveRunResult = await worker.client.workflow.execute<typeof ArchiveAll>(
      'ArchiveAll',
      {
        taskQueue: worker.taskQueue,
        workflowId: `poison-docs-${randomUUID()}`,
        args: [{ database: db.name }],
      },
    );
    const held = result.tables.find((t) => t.table === 'held');
    assert.equal(held?.outcome, 'failed', JSON.stringify(result));
    assert.match(held.reason ?? '', new RegExp(`${escape(key)}: is not valid JSON`));
    const other = result.tables.find((t) => t.table === 'audit_log');
    assert.equal(other?.outcome, 'archived', JSON.stringify(result));
    assert.ok((other.rowsDeleted ?? 0) > 0, JSON.stringify(other));

    // One attempt of the step that read the hold, failed as no retry can fix.
    const handle = worker.client.workflow.getHandle<typeof ArchiveTable>(
      archiveTableWorkflowId(ref),
    );
    const failure = await handle.result().then(
      () => assert.fail('the run of the held table succeeded'),
      (err: unknown) => err,
    );
    assert.ok(failure instanceof WorkflowFailedError);
    const activity = failure.cause;
    assert.ok(activity instanceof ActivityFailure, String(activity));
    assert.equal(activity.activityType, 'surveyTable');
    assert.equal(activity.retryState, 'NON_RETRYABLE_FAILURE');
    assert.ok(activity.cause instanceof ApplicationFailure);
    assert.equal(activity.cause.type, 'DocumentError');
    assert.ok(activity.cause.message.includes(key), activity.cause.message);
    const events = (await handle.fetchHistory()).events ?? [];
    const surveys = events.filter(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'surveyTable',
    );
    assert.equal(surveys.length, 1, 'the step was not tried again after a wait');
    const started = events.find(
      (e) =>
        e.activityTaskStartedEventAttributes?.scheduledEventId?.toString() ===
        surveys[0]!.eventId?.toString(),
    );
    assert.equal(started?.activityTaskStartedEventAttributes?.attempt, 1);

    // Nothing of the held table was archived or deleted, and its lock is free.
    const { n } = await db.one<{ n: number }>('select count(*)::int as n from held');
    assert.equal(n, rowsBefore.n);
    const heldObjects = (await readArchive(s3, prefix)).objects.filter((o) =>
      o.includes('/public.held/'),
    );
    assert.deepEqual(heldObjects, []);
    assert.equal(await archiverLocks(db), 0);
  });

  it('refuses to delete on a truncated deletion manifest, naming its key, as an error no retry can fix', async () => {
    const config: Config = testConfig(
      configFor(db, prefix, uniqueTaskQueue(), [{ name: 'documents' }]),
    );
    const acts = createActivities({ config, env: {}, pools, store: storeOf(config, s3) });
    const env = new MockActivityEnvironment({}, { logger: quietLogger });
    const ref = refOf(db, 'documents');
    const { schemaHash } = await runActivity(env, acts, 'snapshotSchema', ref);
    const exported = await exportFrom(env, acts, {
      table: ref,
      run: 'truncated',
      batch: 1,
      cutoff: new Date(Date.now() - RETENTION_DAYS * 86_400_000).toISOString(),
      cursor: { day: null, afterKey: null },
      schemaHash,
    });
    assert.ok(exported);
    const { object } = exported;
    await runActivity(env, acts, 'verifyBatch', { table: ref, object });
    const key = deletionManifestKey(object);
    const text = (await readBytes(s3, key)).toString('utf8');
    await put(key, text.slice(0, Math.floor(text.length / 2)));
    const rowsBefore = await db.one<{ n: number }>('select count(*)::int as n from documents');

    const lock = { pid: 1, backendStart: new Date().toISOString(), token: randomUUID() };
    await assert.rejects(
      runActivity(env, acts, 'deleteBatch', {
        table: ref,
        object,
        lock,
        watermark: watermarkOf(exported),
      }),
      (err: unknown) => {
        assert.ok(err instanceof DocumentError, String(err));
        assert.equal(err.retryable, false);
        assert.ok(NON_RETRYABLE_ERROR_TYPES.includes(err.name), err.name);
        assert.equal(
          err.message,
          `s3://${BUCKET}/${key}: is not valid JSON (truncated or damaged?)`,
        );
        return true;
      },
    );
    const { n } = await db.one<{ n: number }>('select count(*)::int as n from documents');
    assert.equal(n, rowsBefore.n, 'nothing was deleted');
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** gzip of `bytes` zero bytes, without a newline: a few hundred KiB that inflate without end. */
async function gzipBomb(bytes: number): Promise<Buffer> {
  const gzip = createGzip({ level: 9 });
  const chunks: Buffer[] = [];
  gzip.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = new Promise((resolve, reject) => gzip.on('end', resolve).on('error', reject));
  const zeros = Buffer.alloc(1024 * 1024);
  for (let written = 0; written < bytes; written += zeros.length) {
    if (!gzip.write(zeros)) await new Promise((resolve) => gzip.once('drain', resolve));
  }
  gzip.end();
  await ended;
  return Buffer.concat(chunks);
}

/** Runs `fn` while sampling the process's resident memory; returns its peak growth. */
async function rssGrowth<T>(fn: () => Promise<T>): Promise<{ value: T; growth: number }> {
  const before = process.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
  try {
    const value = await fn();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { value, growth: peak - before };
  } finally {
    clearInterval(timer);
  }
}

// Guarantee 12 (docs/architecture.md), issue 10 item 8: reading an object back is bounded by what its manifest
// says (stored bytes, decompressed bytes, longest line): a gzip bomb or an endless line is one
// VerificationError naming the object, at once and in little memory, on every retry.
describe('Poison inputs: a gzip bomb in place of a verified object (real PostgreSQL, MinIO and Temporal)', function () {
  this.timeout(120_000);
  const prefix = `poison-bomb-${randomUUID()}/`;
  const BOMB_BYTES = 256 * 1024 * 1024;
  let db: TestDatabase;
  let worker: TestWorker;
  let s3: S3Client;
  let pools: PoolRegistry;
  let configFile: string;
  let ref: ResolvedTableRef;
  /**
   * Three objects replaced by the bomb: an exported one whose manifest keeps its own stored
   * size (`oversized`), and two verified ones whose manifests state the bomb's: a small one
   * (its decompressed size is the tighter bound) and a big one (its longest line is).
   */
  const objects: { oversized?: string; small?: string; big?: string } = {};

  before(async () => {
    db = await TestDatabase.create();
    await db.query(`create table bombed (
      id bigint generated always as identity primary key,
      created_at timestamptz not null,
      note text)`);
    // Day 6 holds 5 rows, day 5 holds 20, day 4 holds 2,000: one object each.
    await db.query(
      `insert into bombed (created_at, note)
       select date_trunc('day', now()) - interval '6 days' + g * interval '1 minute', 'oversized ' || g
         from generate_series(1, 5) g
       union all
       select date_trunc('day', now()) - interval '5 days' + g * interval '1 minute', 'small ' || g
         from generate_series(1, 20) g
       union all
       select date_trunc('day', now()) - interval '4 days' + g * interval '10 seconds', 'big ' || g
         from generate_series(1, 2000) g`,
    );
    const options = configFor(db, prefix, uniqueTaskQueue(), [{ name: 'bombed' }]);
    const config = testConfig(options);
    configFile = writeConfigFile(testConfigInput(options));
    worker = await startTestWorker(config);
    s3 = createS3Client(config.s3);
    pools = new PoolRegistry(config.databases, {});
    ref = refOf(db, 'bombed');

    // The batches exported and verified by the activities, as a run would.
    const acts = createActivities({ config, env: {}, pools, store: storeOf(config, s3) });
    const env = new MockActivityEnvironment({}, { logger: quietLogger });
    const { schemaHash } = await runActivity(env, acts, 'snapshotSchema', ref);
    let cursor: { day: string | null; afterKey: string | null } = { day: null, afterKey: null };
    for (const [batch, which] of [
      [1, 'oversized'],
      [2, 'small'],
      [3, 'big'],
    ] as const) {
      const exported = await exportFrom(env, acts, {
        table: ref,
        run: 'bomb',
        batch,
        cutoff: new Date(Date.now() - RETENTION_DAYS * 86_400_000).toISOString(),
        cursor,
        schemaHash,
      });
      assert.ok(exported);
      const { object, next } = exported;
      // A verified object's verifyBatch does not read it again while its manifest is unchanged.
      if (which !== 'oversized')
        await runActivity(env, acts, 'verifyBatch', { table: ref, object });
      objects[which] = object;
      cursor = next;
    }

    // Each object's bytes become the bomb; the manifests of two of them state the bomb's
    // SHA-256 and stored size, so only the decompressed-size and line-length bounds catch it.
    const bomb = await gzipBomb(BOMB_BYTES);
    const sha256 = createHash('sha256').update(bomb).digest('hex');
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: objects.oversized!, Body: bomb }));
    for (const object of [objects.small!, objects.big!]) {
      const manifest = await readJsonObject<ObjectManifest>(s3, manifestKey(object));
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: object, Body: bomb }));
      await s3.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: manifestKey(object),
          Body: JSON.stringify({ ...manifest, sha256, bytes: bomb.length }),
        }),
      );
    }
  });

  after(async () => {
    await worker?.stop();
    await pools?.close();
    s3?.destroy();
    await db?.drop();
  });

  /** What the read-back must say of each object. */
  const expected = () => [
    {
      object: objects.oversized!,
      problem: /^\d+ bytes stored, at most \d+ expected$/,
    },
    {
      object: objects.small!,
      problem: /^decompresses to more than the \d+ bytes expected \(\d+\)$/,
    },
    {
      object: objects.big!,
      problem: /^line 1 is longer than the \d+ bytes expected \(\d+ so far\)$/,
    },
  ];

  it('fails verifyBatch at once, in bounded memory, with a VerificationError naming the object', async () => {
    const config: Config = testConfig(
      configFor(db, prefix, uniqueTaskQueue(), [{ name: 'bombed' }]),
    );
    const acts = createActivities({ config, env: {}, pools, store: storeOf(config, s3) });
    const env = new MockActivityEnvironment({}, { logger: quietLogger });
    for (const { object, problem } of expected()) {
      const started = Date.now();
      const { growth } = await rssGrowth(() =>
        assert.rejects(
          runActivity(env, acts, 'verifyBatch', { table: ref, object }),
          (err: Error) => {
            assert.equal(err.name, 'VerificationError');
            const where = `s3://${BUCKET}/${object}: `;
            assert.ok(err.message.startsWith(where), err.message);
            assert.match(err.message.slice(where.length), problem);
            return true;
          },
        ),
      );
      const tookMs = Date.now() - started;
      assert.ok(tookMs < 5_000, `the read-back of ${object} took ${tookMs} ms`);
      assert.ok(
        growth < 64 * 1024 * 1024,
        `memory grew by ${Math.round(growth / 1024 / 1024)} MiB reading a ${BOMB_BYTES / 1024 / 1024} MiB bomb`,
      );
    }
  });

  it('lets go of the store connection each time an object is larger than its manifest says (60 refusals in a row, more than the client has connections)', async () => {
    const config: Config = testConfig(
      configFor(db, prefix, uniqueTaskQueue(), [{ name: 'bombed' }]),
    );
    const acts = createActivities({ config, env: {}, pools, store: storeOf(config, s3) });
    // The S3 client keeps at most 50 connections; a response left unread keeps one for good.
    for (let i = 1; i <= 60; i++) {
      const env = new MockActivityEnvironment({}, { logger: quietLogger });
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        assert.rejects(
          runActivity(env, acts, 'verifyBatch', { table: ref, object: objects.oversized! }),
          { name: 'VerificationError', message: /bytes stored, at most \d+ expected$/ },
        ),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`refusal ${i} got no answer in 10 s`)), 10_000);
        }),
      ]).finally(() => clearTimeout(timer));
    }
  });

  it('is reported by the Validate workflow and `audit-archiver validate` as a problem of each object', async () => {
    const { value: result, growth } = await rssGrowth(() =>
      worker.client.workflow.execute<typeof Validate>('Validate', {
        taskQueue: worker.taskQueue,
        workflowId: `poison-bomb-validate-${randomUUID()}`,
        args: [{ database: db.name, table: 'bombed' }],
      }),
    );
    assert.ok(growth < 64 * 1024 * 1024, `memory grew by ${Math.round(growth / 1024 / 1024)} MiB`);
    const problems = result.tables[0]!.problems;
    assert.equal(problems.length, 3, JSON.stringify(problems));
    for (const { object, problem } of expected()) {
      const found = problems.find((p) => p.key === object);
      assert.ok(found, `no problem names ${object}: ${JSON.stringify(problems)}`);
      assert.match(found.problem, problem);
    }

    const cli = await runCli(['validate', '--config', configFile, '-d', db.name], {}, 60_000);
    assert.equal(cli.code, 1, cli.stdout + cli.stderr);
    for (const { object, problem } of expected()) {
      const line = cli.stdout.split('\n').find((l) => l.includes(`${object}: `));
      assert.ok(line, `no line names ${object}:\n${cli.stdout}`);
      assert.match(line.slice(line.indexOf(`${object}: `) + object.length + 2), problem);
    }
  });
});
