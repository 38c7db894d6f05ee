import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../../src/config';
import { createS3Client } from '../../src/store/client';
import type { ArchiveTable } from '../../workflows';
import { listAll, readBytes } from '../helpers/bucket';
import { runCli } from '../helpers/cli';
import { testConfig, testConfigInput, writeConfigFile } from '../helpers/config';
import { TestDatabase } from '../helpers/database';
import { BUCKET } from '../helpers/stack';
import { startTestWorker, uniqueTaskQueue, type TestWorker } from '../helpers/worker';

// `audit-archiver restore` as an operator runs it, against a table archived for real.
describe('CLI: restore (real stack)', function () {
  this.timeout(300_000);
  let db: TestDatabase;
  let config: Config;
  let configFile: string;
  let worker: TestWorker;
  let s3: S3Client;
  const prefix = `restore-cli-${randomUUID()}/`;
  let days: string[];

  before(async () => {
    db = await TestDatabase.create();
    await db.query(
      `create table logs (id int primary key, created_at timestamptz not null, msg text, amount int)`,
    );
    // 10 UTC days, 40 rows each, all well past retention.
    await db.query(
      `insert into logs select g, date_trunc('day', now()) - interval '30 days' + (g % 10) * interval '1 day' + (g % 40) * interval '1 minute',
                              'message ' || g, g * 7
         from generate_series(1, 400) g`,
    );
    days = (
      await db.query<{ day: string }>(
        `select distinct created_at::date::text as day from logs order by 1`,
      )
    ).map((r) => r.day);
    const taskQueue = uniqueTaskQueue();
    const edit = (c: ReturnType<typeof testConfigInput>) => {
      c.defaults = { retention_days: 7, batch_size: 25, pause_between_batches_ms: 0 };
    };
    const options = {
      database: db.name,
      prefix,
      taskQueue,
      tables: [{ name: 'logs' }],
      overrides: edit,
    };
    config = testConfig(options);
    configFile = writeConfigFile(testConfigInput(options));
    worker = await startTestWorker(config);
    s3 = createS3Client(config.s3);
    await archive();
    assert.equal((await db.one<{ n: number }>('select count(*)::int as n from logs')).n, 0);
  });

  after(async () => {
    await worker?.stop();
    s3?.destroy();
    await db?.drop();
  });

  async function archive(): Promise<number> {
    const outcome = await worker.client.workflow.execute<typeof ArchiveTable>('ArchiveTable', {
      taskQueue: worker.taskQueue,
      workflowId: `archive-logs-${randomUUID()}`,
      args: [{ database: db.name, table: 'logs' }],
    });
    assert.equal(outcome.outcome, 'archived');
    return outcome.outcome === 'archived' ? outcome.rowsArchived : -1;
  }

  const restore = (...args: string[]) =>
    runCli(['restore', '--config', configFile, '-d', db.name, ...args]);
  const count = async (table = 'logs') =>
    (await db.one<{ n: number }>(`select count(*)::int as n from ${table}`)).n;

  it("lists the table's archive: key, day, rows, rows deleted, size, restored or not", async () => {
    const { code, stdout } = await restore('-t', 'logs');
    assert.equal(code, 0, stdout);
    const rows = stdout.split('\n').filter((l) => l.includes('.jsonl.gz'));
    assert.ok(rows.length >= 20, stdout);
    assert.ok(
      rows.every((r) => /\s20\d\d-\d\d-\d\d\s+(\d+)\s+\1\s+[\d.]+ (B|KiB)\s+no$/.test(r)),
      rows[0],
    );
  });

  it('restores exactly a date range, then writes nothing on a second --restore-all', async () => {
    const [from, to] = [days[2]!, days[4]!];
    const range = ['-t', 'logs', '--restore-all', '--start-date', from, '--end-date', to];
    const first = await restore(...range);
    assert.equal(first.code, 0, first.stdout);
    assert.match(first.stdout, /^restore into .* 120 rows/m);
    const outside = await db.one<{ n: number }>(
      `select count(*)::int as n from logs where created_at::date < $1::date or created_at::date > $2::date`,
      [from, to],
    );
    assert.equal(outside.n, 0);
    assert.equal(await count(), 120);

    const again = await restore(...range);
    assert.match(again.stdout, /nothing to restore/);
    const ignoring = await restore(...range, '--ignore-watermark', '--conflict-strategy', 'skip');
    assert.equal(ignoring.code, 0, ignoring.stdout);
    assert.match(
      ignoring.stdout,
      /0 inserted, 0 overwritten, 0 skipped \(key exists\), 120 already there/,
    );
    assert.equal(await count(), 120);
  });

  it('holds restored days: the next archive leaves them until the holds are released', async () => {
    assert.equal(await archive(), 0);
    assert.equal(await count(), 120);
    const released = await restore('-t', 'logs', '--release-holds');
    assert.match(released.stdout, /^released \S+ \(restore\): \d{4}-\d\d-\d\d/m);
    assert.equal(await archive(), 120);
    assert.equal(await count(), 0);
  });

  it('restores into a table with an added column and a widened type', async () => {
    await db.query(
      `create table logs_v2 (id int primary key, created_at timestamptz not null, msg text, amount bigint, extra text default 'new')`,
    );
    const { code, stdout } = await restore(
      '-t',
      'logs',
      '--restore-all',
      '--target-table',
      'logs_v2',
      '--start-date',
      days[0]!,
      '--end-date',
      days[0]!,
    );
    assert.equal(code, 0, stdout);
    assert.match(stdout, /amount: integer -> bigint \(cast from the archived text form\)/);
    assert.match(stdout, /take their defaults \(not in the archive\): extra/);
    const rows = await db.query<{ id: number; amount: string; extra: string }>(
      'select id, amount::text, extra from logs_v2 order by id',
    );
    assert.equal(rows.length, 40);
    for (const r of rows) assert.deepEqual([r.amount, r.extra], [String(r.id * 7), 'new']);
  });

  it('refuses a target missing an archived column, naming it, and writes nothing', async () => {
    await db.query(
      `create table logs_v3 (id int primary key, created_at timestamptz not null, amount int)`,
    );
    // Days the hold test did not restore and archive a second time.
    const range = ['--start-date', days[5]!, '--end-date', days[9]!];
    const refused = await restore(
      '-t',
      'logs',
      '--restore-all',
      '--target-table',
      'logs_v3',
      ...range,
    );
    assert.equal(refused.code, 1);
    assert.match(
      refused.stdout,
      /restore refused: .*lacks archived columns msg; nothing was written/,
    );
    assert.equal(await count('logs_v3'), 0);
    const dropped = await restore(
      '-t',
      'logs',
      '--restore-all',
      '--target-table',
      'logs_v3',
      '--drop-missing-columns',
      ...range,
    );
    assert.equal(dropped.code, 0, dropped.stdout);
    assert.equal(await count('logs_v3'), 200);
  });

  it('refuses an object with one flipped byte and writes nothing', async () => {
    await db.query('truncate logs');
    const object = (await listAll(s3, prefix)).find((o) => o.key.endsWith('.jsonl.gz'))!.key;
    const bytes = await readBytes(s3, object);
    bytes[bytes.length - 12]! ^= 0x40;
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: object, Body: bytes }));
    const { code, stdout } = await restore('-t', 'logs', '--s3-key', object, '--ignore-watermark');
    assert.equal(code, 1, stdout);
    assert.match(
      stdout,
      new RegExp(`restore refused: .*${object.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
    );
    assert.equal(await count(), 0);
  });

  it('rejects a malformed date before starting anything, exit 2', async () => {
    const { code, stderr } = await restore(
      '-t',
      'logs',
      '--restore-all',
      '--start-date',
      '2026-13-01',
    );
    assert.equal(code, 2);
    assert.match(stderr, /--start-date 2026-13-01: expected a date as YYYY-MM-DD/);
  });
});
