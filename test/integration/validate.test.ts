import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { RESTORE_RECEIPT_FORMAT, type RestoreReceipt } from '../../src/store/documents';
import { dayOfKey, manifestKey, restoreReceiptKey, tablePrefix } from '../../src/store/layout';
import type { ConfigInput } from '../../src/config/schema';
import { createS3Client } from '../../src/store/client';
import { archiveTableWorkflowId } from '../../src/shared/archive-types';
import {
  ArchiveDatabase,
  ArchiveTable as ArchiveTableKey,
} from '../../src/shared/search-attributes';
import type { ValidateProgress, ValidateResult } from '../../src/shared/validate-types';
import type { ArchiveTable, Validate } from '../../workflows';
import { listAll, readBytes } from '../helpers/bucket';
import { runCli, type CliResult } from '../helpers/cli';
import { testConfig, testConfigInput, writeConfigFile } from '../helpers/config';
import { TestDatabase } from '../helpers/database';
import { BUCKET } from '../helpers/stack';
import { startTestWorker, uniqueTaskQueue, type TestWorker } from '../helpers/worker';

const DAYS = 6;
const ROWS = 600;

// `audit-archiver validate` as an operator runs it, against an archive written by a real
// ArchiveTable run: a sound archive passes, and each kind of damage done to the bucket by
// hand is reported by the key it concerns, with exit code 1.
describe('CLI: validate an archive (real stack)', function () {
  this.timeout(300_000);
  const prefix = `validate-${randomUUID()}/`;
  let db: TestDatabase;
  let worker: TestWorker;
  let s3: S3Client;
  let configFile: string;
  let objects: string[];
  const ref = { database: '', schema: 'public', table: 'audit_log' };

  before(async () => {
    db = await TestDatabase.create();
    ref.database = db.name;
    await db.query(`create table audit_log (
      id bigint generated always as identity primary key,
      created_at timestamptz not null,
      actor text not null,
      action text,
      payload jsonb)`);
    // ROWS rows over DAYS UTC days, all past retention: two objects of 50 rows per day.
    await db.query(
      `insert into audit_log (created_at, actor, action, payload)
       select date_trunc('day', now() - interval '10 days') - (g % $2::int) * interval '1 day'
                + (g % 1000) * interval '1 minute',
              'user' || (g % 7), 'update', jsonb_build_object('n', g)
         from generate_series(1, $1::int) g`,
      [ROWS, DAYS],
    );
    const taskQueue = uniqueTaskQueue();
    const overrides = (c: ConfigInput) => {
      c.defaults = { retention_days: 3, batch_size: 50, pause_between_batches_ms: 0 };
    };
    configFile = writeConfigFile(
      testConfigInput({ database: db.name, prefix, taskQueue, overrides }),
    );
    const config = testConfig({ database: db.name, prefix, taskQueue, overrides });
    worker = await startTestWorker(config);
    s3 = createS3Client(config.s3);
    const outcome = await worker.client.workflow.execute<typeof ArchiveTable>('ArchiveTable', {
      taskQueue,
      workflowId: `${archiveTableWorkflowId(ref)}-${randomUUID()}`,
      args: [ref],
    });
    assert.equal(outcome.outcome, 'archived');
    assert.equal(outcome.rowsDeleted, ROWS);
    objects = (await listAll(s3, prefix)).map((o) => o.key).filter((k) => k.endsWith('.jsonl.gz'));
    assert.ok(objects.length >= DAYS * 2, `${objects.length} objects`);
  });

  after(async () => {
    await worker?.stop();
    s3?.destroy();
    await db?.drop();
  });

  const validate = (...args: string[]): Promise<CliResult> =>
    runCli(['validate', '--config', configFile, ...args]);

  /** The `key: problem` lines of a report. */
  const problemLines = (stdout: string) => stdout.split('\n').filter((l) => l.startsWith(prefix));

  const put = (key: string, body: Uint8Array) =>
    s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));

  /** Runs `fn` with the object damaged, and puts the original bytes back afterwards. */
  async function withDamaged(
    key: string,
    damage: (bytes: Buffer) => Promise<unknown>,
    fn: () => Promise<void>,
  ): Promise<void> {
    const original = await readBytes(s3, key);
    await damage(Buffer.from(original));
    try {
      await fn();
    } finally {
      await put(key, original);
    }
  }

  const flipByte = (key: string) => async (bytes: Buffer) => {
    const at = Math.floor(bytes.length / 2);
    bytes[at] = bytes[at]! ^ 0x01;
    await put(key, bytes);
  };

  it('passes a sound archive and exits 0', async () => {
    const { code, stdout, stderr } = await validate();
    assert.equal(code, 0, stderr + stdout);
    assert.deepEqual(problemLines(stdout), []);
    assert.match(stdout, /validation passed: 1 tables, \d+ objects, every check passed/);
    assert.match(
      stdout,
      new RegExp(
        `${db.name} public\\.audit_log: ${objects.length} objects, 600 rows, 20 sampled: ok`,
      ),
    );
  });

  it('runs with no input, as a bare `temporal workflow start` does, and tags a one-table run for search', async () => {
    const handle = await worker.client.workflow.start<typeof Validate>('Validate', {
      taskQueue: worker.taskQueue,
      workflowId: `validate-test-${randomUUID()}`,
      args: [],
    });
    const result = await handle.result();
    assert.equal(result.problems, 0);
    assert.equal(result.tables[0]!.sampled, 20);
    const described = await handle.describe();
    assert.equal(described.typedSearchAttributes.get(ArchiveDatabase), db.name);
    assert.equal(described.typedSearchAttributes.get(ArchiveTableKey), 'public.audit_log');
    const progress = await handle.query<ValidateProgress>('progress');
    assert.deepEqual(
      [progress.tablesDone, progress.tablesTotal, progress.objectsChecked, progress.problems],
      [1, 1, objects.length, 0],
    );
  });

  it('reports exactly the object with one flipped byte, as text and as JSON, and exits 1', async () => {
    const broken = objects[3]!;
    await withDamaged(broken, flipByte(broken), async () => {
      const text = await validate();
      assert.equal(text.code, 1, text.stderr + text.stdout);
      const lines = problemLines(text.stdout);
      assert.equal(lines.length, 1, text.stdout);
      assert.match(lines[0]!, new RegExp(`^${broken}: (SHA-256|does not decompress)`));

      const json = await validate('--json');
      assert.equal(json.code, 1, json.stderr);
      const result = JSON.parse(json.stdout) as ValidateResult;
      assert.equal(result.problems, 1);
      assert.equal(result.truncated, false);
      assert.deepEqual(
        result.tables[0]!.problems.map((p) => p.key),
        [broken],
      );
      assert.equal(`${broken}: ${result.tables[0]!.problems[0]!.problem}`, lines[0]);
    });
  });

  it('reports a data object whose manifest was deleted, by the data object key', async () => {
    const broken = objects[5]!;
    const manifest = manifestKey(broken);
    await withDamaged(
      manifest,
      () =>
        s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: manifest })).then(() => undefined),
      async () => {
        const { code, stdout, stderr } = await validate();
        assert.equal(code, 1, stderr + stdout);
        assert.deepEqual(problemLines(stdout), [
          `${broken}: has no manifest (${manifest} is missing)`,
        ]);
      },
    );
  });

  it('reports a truncated object', async () => {
    const broken = objects[7]!;
    await withDamaged(
      broken,
      (bytes) => put(broken, bytes.subarray(0, Math.floor(bytes.length / 2))),
      async () => {
        const { code, stdout, stderr } = await validate();
        assert.equal(code, 1, stderr + stdout);
        const lines = problemLines(stdout);
        assert.equal(lines.length, 1, stdout);
        assert.ok(lines[0]!.startsWith(`${broken}: `), lines[0]);
      },
    );
  });

  it('passes a day range that leaves out the damaged object, and checks only that range', async () => {
    const broken = objects[0]!;
    const day = dayOfKey(broken)!;
    const next = new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
    await withDamaged(broken, flipByte(broken), async () => {
      const { code, stdout, stderr } = await validate('--start-date', next, '--json');
      assert.equal(code, 0, stderr + stdout);
      const result = JSON.parse(stdout) as ValidateResult;
      assert.equal(result.problems, 0);
      const inRange = objects.filter((o) => dayOfKey(o)! >= next).length;
      assert.equal(result.tables[0]!.objects, inRange);
      assert.ok(inRange < objects.length);

      const same = await validate('--start-date', day, '--end-date', day);
      assert.equal(same.code, 1, same.stderr + same.stdout);
      assert.deepEqual(
        problemLines(same.stdout).map((l) => l.slice(0, broken.length)),
        [broken],
      );
    });
  });

  describe('sample check against the source table', () => {
    let line: string;
    let object: string;

    before(async () => {
      object = objects[2]!;
      line = gunzipSync(await readBytes(s3, object))
        .toString('utf8')
        .split('\n')[0]!;
    });

    /** Puts one archived row back into the table exactly as it was archived. */
    async function reinsert(): Promise<string> {
      const { id } = await db.one<{ id: string }>(
        `insert into audit_log (id, created_at, actor, action, payload) overriding system value
         select (r->>'id')::bigint, (r->>'created_at')::timestamptz, r->>'actor', r->>'action',
                (r->>'payload')::jsonb
           from (select $1::json as r) as s
         returning id::text as id`,
        [line],
      );
      return id;
    }

    it('reports an archived row still in the source table, identical, though its batch was deleted', async () => {
      const id = await reinsert();
      try {
        const { code, stdout, stderr } = await validate('--sample-size', '1000');
        assert.equal(code, 1, stderr + stdout);
        assert.deepEqual(problemLines(stdout), [
          `${object}: row id = ${id} is still in the source table, identical, though the deletion receipt says it was deleted`,
        ]);
      } finally {
        await db.query('delete from audit_log where id = $1::bigint', [id]);
      }
    });

    it('accepts the row once it changed since: a later run archives the new version', async () => {
      const id = await reinsert();
      try {
        await db.query(`update audit_log set action = 'changed' where id = $1::bigint`, [id]);
        const { code, stdout, stderr } = await validate('--sample-size', '1000');
        assert.equal(code, 0, stderr + stdout);
      } finally {
        await db.query('delete from audit_log where id = $1::bigint', [id]);
      }
    });

    it('accepts the row when a restore receipt says its object was restored into this table', async () => {
      const at = { prefix, ...ref };
      const receipt = restoreReceiptKey(at, at, object);
      const id = await reinsert();
      try {
        const restored: RestoreReceipt = {
          format: RESTORE_RECEIPT_FORMAT,
          object,
          target: ref,
          conflict: 'skip',
          lines: 'deleted',
          rows: 1,
          inserted: 1,
          overwritten: 0,
          skipped: 0,
          identical: 0,
          workflowId: 'test',
          restoredAt: new Date().toISOString(),
        };
        await put(receipt, Buffer.from(JSON.stringify(restored)));
        const { code, stdout, stderr } = await validate('--sample-size', '1000');
        assert.equal(code, 0, stderr + stdout);
      } finally {
        await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: receipt }));
        await db.query('delete from audit_log where id = $1::bigint', [id]);
      }
    });

    it('reports a source table that no longer exists, and still checks the bucket', async () => {
      await db.query('alter table audit_log rename to audit_log_gone');
      try {
        const { code, stdout, stderr } = await validate('--json');
        assert.equal(code, 1, stderr + stdout);
        const result = JSON.parse(stdout) as ValidateResult;
        const table = result.tables[0]!;
        assert.equal(table.objects, objects.length);
        assert.equal(table.rows, ROWS);
        assert.equal(table.sampled, 0);
        assert.equal(table.problems.length, 1);
        assert.equal(table.problems[0]!.key, tablePrefix({ prefix, ...ref }));
        assert.match(table.problems[0]!.problem, /sample check not possible: .*does not exist/);
      } finally {
        await db.query('alter table audit_log_gone rename to audit_log');
      }
    });
  });

  it('refuses a reversed day range with exit 2 before it starts anything', async () => {
    const { code, stderr } = await validate(
      '--start-date',
      '2024-02-02',
      '--end-date',
      '2024-02-01',
    );
    assert.equal(code, 2);
    assert.match(stderr, /^error: --start-date 2024-02-02 is after --end-date 2024-02-01$/m);
    const bad = await validate('--start-date', '2024-02-30');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /2024-02-30.*YYYY-MM-DD/);
  });
});
