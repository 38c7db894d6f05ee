import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { MockActivityEnvironment } from '@temporalio/testing';
import pg from 'pg';
import { loadTableContext } from '../../activities/context';
import { archiveActivities } from '../../activities/archive';
import type { Config } from '../../src/config';
import { PoolRegistry } from '../../src/postgres/pool';
import { LOCK_CLASS_ID } from '../../src/postgres/sql/table-lock';
import type {
  BatchStart,
  Cursor,
  DeleteBatchResult,
  ExportedBatch,
  LockHolder,
} from '../../src/shared/archive-types';
import { createS3Client } from '../../src/store/client';
import type { DeletionManifest, DeletionReceipt, ObjectManifest } from '../../src/store/documents';
import { deletionManifestKey, deletionReceiptKey, manifestKey } from '../../src/store/layout';
import { quietLogger, runActivity, storeOf, watermarkOf } from '../helpers/activity';
import { listAll, readBytes, readJsonObject, readRows } from '../helpers/bucket';
import { testConfig } from '../helpers/config';
import { TestDatabase } from '../helpers/database';
import { gate, interceptS3 } from '../helpers/s3-faults';
import { BUCKET, PG } from '../helpers/stack';

// The batch activities one at a time, against real PostgreSQL and MinIO, with the moments
// between them that a whole run never lets a test reach: a row changing after its export, a
// lost commit reply, two attempts of one export overlapping, a corrupted object, a lost lock.
describe('archive batch activities (real PostgreSQL and MinIO)', function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let config: Config;
  let pools: PoolRegistry;
  let s3: S3Client;
  let acts: ReturnType<typeof archiveActivities>;
  let lockSession: pg.Client;
  let holder: LockHolder;
  const env = new MockActivityEnvironment({}, { logger: quietLogger });
  const table = { database: '', schema: 'public', table: 'audit_log' };
  const cutoff = new Date().toISOString();
  let batchNo = 0;

  before(async () => {
    db = await TestDatabase.create();
    table.database = db.name;
    await db.query(
      `create table audit_log (id int primary key, created_at timestamptz not null, note text)`,
    );
    config = testConfig({ database: db.name, prefix: `acts-${randomUUID()}/` });
    pools = new PoolRegistry(config.databases, {});
    s3 = createS3Client(config.s3);
    acts = archiveActivities({ config, env: {}, pools, store: storeOf(config, s3) });
    // Stands in for the holdTableLock activity: a session holding the table's advisory lock.
    lockSession = new pg.Client({ ...PG, database: db.name });
    await lockSession.connect();
    const { rows } = await lockSession.query<{ pid: number; backend_start: string }>(
      `select pg_advisory_lock($1::int, 'audit_log'::regclass::oid::int4), pg_backend_pid() as pid,
              (select backend_start::text from pg_stat_activity where pid = pg_backend_pid()) as backend_start`,
      [LOCK_CLASS_ID],
    );
    holder = { pid: rows[0]!.pid, backendStart: rows[0]!.backend_start, token: 'test' };
  });

  after(async () => {
    await lockSession?.end();
    await pools?.close();
    s3?.destroy();
    await db?.drop();
  });

  afterEach(() => db.query('delete from audit_log'));

  async function insertRows(ids: number[]): Promise<void> {
    await db.query(
      `insert into audit_log select id, timestamptz '2020-01-02 10:00:00+00' + id * interval '1 second', 'v1'
         from unnest($1::int[]) as id`,
      [ids],
    );
  }

  /** Inserts rows on one old day and exports them as one batch. */
  async function exportRows(ids: number[]): Promise<ExportedBatch> {
    await insertRows(ids);
    return exportNext();
  }

  function exportInput(batch: number, start: BatchStart, schemaHash: string, batchSize?: number) {
    return {
      table,
      run: 'test',
      batch,
      cutoff,
      start,
      schemaHash,
      holds: [],
      ...(batchSize !== undefined && { batchSize }),
    };
  }

  /** Where the next batch starts from `cursor` (by default the start of the table). */
  async function startOf(cursor: Cursor = { day: null, afterKey: null }): Promise<BatchStart> {
    const start = await runActivity(env, acts, 'findBatch', { table, cutoff, cursor, holds: [] });
    assert.ok(start, 'an eligible row is left');
    return start;
  }

  /**
   * Exports the next batch from `cursor` (by default the start of the table), with a new
   * batch number each time.
   */
  async function exportNext(
    cursor: Cursor = { day: null, afterKey: null },
    batchSize?: number,
  ): Promise<ExportedBatch> {
    const result = await runActivity(
      env,
      acts,
      'exportBatch',
      exportInput(++batchNo, await startOf(cursor), await currentSchemaHash(), batchSize),
    );
    assert.equal(result.kind, 'batch');
    return result;
  }

  async function currentSchemaHash(): Promise<string> {
    const client = await pools.get(db.name).connect();
    try {
      const deps = { config, env: {}, pools, store: storeOf(config, s3) };
      return (await loadTableContext(deps, table, client)).schemaHash;
    } finally {
      client.release();
    }
  }

  async function ids(): Promise<number[]> {
    return (await db.query<{ id: number }>('select id from audit_log order by id')).map(
      (r) => r.id,
    );
  }

  const verify = (object: string) => runActivity(env, acts, 'verifyBatch', { table, object });
  const deleteAndRecord = (batch: ExportedBatch, lock = holder, run = 'test-run') =>
    runActivity(env, acts, 'deleteBatch', {
      table,
      object: batch.object,
      lock,
      watermark: watermarkOf(batch, run),
    });
  /** The delete's counts. */
  const remove = async (batch: ExportedBatch, lock = holder): Promise<DeleteBatchResult> => {
    const { listed, deleted, changed, alreadyGone } = await deleteAndRecord(batch, lock);
    return { listed, deleted, changed, alreadyGone };
  };

  it('deletes only the rows whose content is still the archived version, and records their keys', async () => {
    const batch = await exportRows([1, 2, 3, 4]);
    await db.query(`update audit_log set note = 'changed after export' where id = 3`);
    await verify(batch.object);
    const result = await remove(batch);
    assert.deepEqual(result, { listed: 4, deleted: 3, changed: 1, alreadyGone: 0 });
    assert.deepEqual(await ids(), [3]);
    const receipt = await readJsonObject<DeletionReceipt>(s3, deletionReceiptKey(batch.object));
    assert.deepEqual([...receipt.deletedKeys].sort(), ['1', '2', '4']);

    // The changed row is archived (in its new version) by the next batch, then deleted.
    const again = await exportNext();
    assert.equal(again.rowCount, 1);
    await verify(again.object);
    assert.equal((await remove(again)).deleted, 1);
    assert.deepEqual(await ids(), []);
  });

  it('keeps a verified batch in the table when a legal hold on its day was placed after its export, and deletes it once the hold is released', async () => {
    const batch = await exportRows([5, 6, 7]);
    await verify(batch.object);
    const archive = storeOf(config, s3).table(table);
    await archive.saveHold({
      format: 'audit-archiver/hold@1',
      id: 'legal-midrun',
      kind: 'legal',
      reason: 'placed while the run went on',
      days: [{ first: batch.day, last: batch.day }],
      placedBy: 'test',
      workflowId: 'test',
      runId: 'test',
      createdAt: new Date().toISOString(),
    });
    const held = await deleteAndRecord(batch);
    assert.equal(held.heldBy, 'legal-midrun');
    assert.deepEqual([held.listed, held.deleted, held.changed, held.alreadyGone], [3, 0, 0, 0]);
    assert.deepEqual(await ids(), [5, 6, 7]);
    assert.equal(
      (await listAll(s3, deletionReceiptKey(batch.object))).length,
      0,
      'no receipt: the batch was not deleted',
    );

    await archive.saveHoldRelease({
      format: 'audit-archiver/hold-release@1',
      id: 'legal-midrun',
      reason: 'released',
      workflowId: 'test',
      releasedAt: new Date().toISOString(),
    });
    assert.deepEqual(await remove(batch), { listed: 3, deleted: 3, changed: 0, alreadyGone: 0 });
    assert.deepEqual(await ids(), []);
  });

  it('deletes a row written again with the same values (a new version) by its fingerprint', async () => {
    const batch = await exportRows([5, 6, 7]);
    await verify(batch.object);
    const deletion = await readJsonObject<DeletionManifest>(s3, deletionManifestKey(batch.object));
    const versions = await db.query<{ ctid: string; xmin: string }>(
      'select ctid::text as ctid, xmin::text as xmin from audit_log order by id',
    );
    assert.deepEqual(deletion.versions, {
      ctids: versions.map((v) => v.ctid),
      xmins: versions.map((v) => v.xmin),
    });
    // A new tuple, a new xmin: the version no longer matches, the content still does.
    await db.query(`update audit_log set note = note where id = 6`);
    assert.deepEqual(await remove(batch), { listed: 3, deleted: 3, changed: 0, alreadyGone: 0 });
    assert.deepEqual(await ids(), []);
  });

  it('rolls back, deleting nothing, when a row still at its exported version differs from its archived line', async () => {
    const batch = await exportRows([8, 9]);
    await verify(batch.object);
    // Stands in for a line the export built wrongly: the first row, always spot-checked,
    // is listed at its version with another line's fingerprint.
    const key = deletionManifestKey(batch.object);
    const deletion = await readJsonObject<DeletionManifest>(s3, key);
    deletion.fingerprints[0] = createHash('md5').update('another line').digest('hex');
    await s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: JSON.stringify(deletion) }),
    );
    await assert.rejects(remove(batch), (err: Error) => {
      assert.equal(err.name, 'DeleteMismatchError');
      assert.match(err.message, /key 8 is still the row version the export read/);
      return true;
    });
    assert.deepEqual(await ids(), [8, 9]);
  });

  it('moves the watermark to the deleted batch, never back, and reads the next batch’s load signals', async () => {
    const older = await exportRows([30, 31]);
    await insertRows([32]);
    const newer = await exportNext({ day: older.day, afterKey: older.lastKey });
    const watermark = async () => (await storeOf(config, s3).table(table).watermark())!;
    await verify(newer.object);
    const after = await deleteAndRecord(newer, holder, 'newer-run');
    assert.equal((await watermark()).archivedThroughMicros, newer.maxTimestampMicros);
    assert.equal(after.reading.limits.niceRatio, config.defaults.throttle.nice_ratio);
    assert.equal(typeof after.reading.signals.lockWaiters, 'number');
    // A batch with older rows, deleted later (a retry, say), leaves the watermark where it is.
    await verify(older.object);
    await deleteAndRecord(older, holder, 'older-run');
    const kept = await watermark();
    assert.equal(kept.archivedThroughMicros, newer.maxTimestampMicros);
    assert.equal(kept.lastRun, 'newer-run');
  });

  it('deletes nothing else when retried after a commit whose reply was lost', async () => {
    const batch = await exportRows([10, 11]);
    await verify(batch.object);
    const first = await remove(batch);
    // Same keys back in the table (e.g. restored by someone): a retry must not touch them.
    await db.query(`insert into audit_log values (10, now(), 'restored')`);
    assert.deepEqual(await remove(batch), first);
    assert.deepEqual(await ids(), [10]);
  });

  it('records what a delete removed even when the worker died between its commit and its receipt', async () => {
    const batch = await exportRows([12, 13, 14]);
    await verify(batch.object);
    // The first attempt commits, then cannot write its receipt (the worker "dies" there).
    const dying = createS3Client(config.s3);
    interceptS3(dying, (command, input) =>
      command === 'PutObjectCommand' && input.Key === deletionReceiptKey(batch.object)
        ? { fail: new Error('worker died before the receipt') }
        : undefined,
    );
    const dyingActs = archiveActivities({ config, env: {}, pools, store: storeOf(config, dying) });
    await assert.rejects(
      runActivity(env, dyingActs, 'deleteBatch', {
        table,
        object: batch.object,
        lock: holder,
        watermark: watermarkOf(batch),
      }),
      /worker died before the receipt/,
    );
    dying.destroy();
    assert.deepEqual(await ids(), [], 'the first attempt committed');
    // The retry finds the rows gone, learns from PostgreSQL that the earlier transaction
    // committed, and records what that transaction deleted: nothing is counted as lost.
    const retry = await remove(batch);
    assert.deepEqual(retry, { listed: 3, deleted: 3, changed: 0, alreadyGone: 0 });
    const receipt = await readJsonObject<DeletionReceipt>(s3, deletionReceiptKey(batch.object));
    assert.deepEqual([...receipt.deletedKeys].sort(), ['12', '13', '14']);
  });

  it('does not fail a correct batch when the application deletes one of its rows during the delete', async () => {
    const batch = await exportRows([15, 16, 17]);
    await verify(batch.object);
    // The application deletes row 16 in a transaction that is still open when ours starts.
    const app = new pg.Client({ ...PG, database: db.name });
    await app.connect();
    try {
      await app.query('begin');
      await app.query('delete from audit_log where id = 16');
      const ours = remove(batch);
      // Once our DELETE waits for the application's row lock, the application commits.
      for (let i = 0; i < 100; i++) {
        const { rows } = await app.query<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity
            where datname = current_database() and application_name = 'audit-archiver'
              and wait_event_type = 'Lock'`,
        );
        if (rows[0]!.n > 0) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      await app.query('commit');
      assert.deepEqual(await ours, { listed: 3, deleted: 2, changed: 0, alreadyGone: 1 });
    } finally {
      await app.end();
    }
    assert.deepEqual(await ids(), []);
  });

  it('is idempotent on export: a retried batch returns its first attempt, same object', async () => {
    const batch = await exportRows([20, 21, 22]);
    const before = await readBytes(s3, batch.object);
    const retry = await runActivity(
      env,
      acts,
      'exportBatch',
      exportInput(batchNo, { day: batch.day, afterKey: null }, await currentSchemaHash()),
    );
    assert.deepEqual(retry, batch);
    assert.deepEqual(await readBytes(s3, batch.object), before);
  });

  it('never deletes or replaces an object a newer attempt of the same export stored, verified and deleted', async () => {
    await insertRows([50, 51, 52, 53]);
    const schemaHash = await currentSchemaHash();
    const input = exportInput(++batchNo, await startOf(), schemaHash);
    // Attempt 1 stalls inside its first write to the store (a lost reply, a frozen worker)...
    const held = gate();
    const reached = gate();
    const stalled = createS3Client(config.s3);
    let first = true;
    interceptS3(stalled, (command) => {
      const write = ['PutObjectCommand', 'DeleteObjectCommand', 'CreateMultipartUploadCommand'];
      if (!first || !write.includes(command)) return undefined;
      first = false;
      reached.open();
      return { wait: held.promise };
    });
    const lateActs = archiveActivities({ config, env: {}, pools, store: storeOf(config, stalled) });
    const late = runActivity(
      new MockActivityEnvironment({}, { logger: quietLogger }),
      lateActs,
      'exportBatch',
      input,
    );
    await reached.promise;
    // ...while attempt 2 exports, verifies and deletes the batch.
    const newer = await runActivity(env, acts, 'exportBatch', input);
    assert.equal(newer.kind, 'batch');
    await verify(newer.object);
    await remove(newer);
    assert.deepEqual(await ids(), []);
    // Attempt 1 wakes up and goes on.
    held.open();
    const lateResult = await late.catch((err: unknown) => err);
    stalled.destroy();
    if (!(lateResult instanceof Error)) assert.deepEqual(lateResult, newer);

    // Every row is in the table or in an object whose SHA-256 matches its manifest.
    const archived = new Set<string>();
    for (const { key } of await listAll(s3, config.s3.prefix)) {
      if (!key.endsWith('.jsonl.gz')) continue;
      const manifest = await readJsonObject<ObjectManifest>(s3, manifestKey(key));
      const sha = createHash('sha256')
        .update(await readBytes(s3, key))
        .digest('hex');
      if (sha !== manifest.sha256) continue;
      for (const row of await readRows(s3, key)) archived.add(row.id!);
    }
    const live = new Set((await ids()).map(String));
    const lost = ['50', '51', '52', '53'].filter((id) => !archived.has(id) && !live.has(id));
    assert.deepEqual(lost, []);
  });

  it('adopts an object an earlier attempt stored without a manifest, describing it from a read-back', async () => {
    const batch = await exportRows([60, 61]);
    const stored = await readBytes(s3, batch.object);
    const manifest = await readJsonObject<ObjectManifest>(s3, manifestKey(batch.object));
    // As if the earlier attempt died between its upload and its manifest.
    const store = storeOf(config, s3);
    const { DeleteObjectCommand } = await import('@aws-sdk/client-s3');
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: manifestKey(batch.object) }));
    await db.query(`update audit_log set note = 'changed since' where id = 60`);
    const retry = await runActivity(
      env,
      acts,
      'exportBatch',
      exportInput(batchNo, { day: batch.day, afterKey: null }, await currentSchemaHash()),
    );
    assert.equal(retry.kind === 'batch' && retry.object, batch.object);
    assert.deepEqual(await readBytes(s3, batch.object), stored, 'the stored object is kept');
    const adopted = await store.table(table).requireManifest(batch.object);
    assert.equal(adopted.adopted, true);
    assert.equal(adopted.sha256, manifest.sha256);
    assert.equal(adopted.rowCount, 2);
    assert.deepEqual(adopted.timestamp, manifest.timestamp);
  });

  it('archives every row of a day when the batch size changed between two attempts of a batch', async () => {
    await insertRows([70, 71, 72, 73, 74]);
    const schemaHash = await currentSchemaHash();
    // An earlier attempt exported 2 rows; its retry runs with a batch size of 4.
    const n = ++batchNo;
    const start = await startOf();
    await runActivity(env, acts, 'exportBatch', exportInput(n, start, schemaHash, 2));
    const retried = await runActivity(
      env,
      acts,
      'exportBatch',
      exportInput(n, start, schemaHash, 4),
    );
    assert.equal(retried.kind === 'batch' && retried.rowCount, 2);
    assert.deepEqual(retried.kind === 'batch' && retried.following, {
      day: start.day,
      afterKey: '71',
    });
    const rest = await exportNext(retried.kind === 'batch' ? retried.next : undefined, 4);
    assert.deepEqual([rest.firstKey, rest.lastKey, rest.rowCount], ['72', '74', 3]);
  });

  it('exports the same object on every attempt of a batch, though rows were backdated into an earlier day meanwhile', async () => {
    await insertRows([80, 81]);
    const n = ++batchNo;
    const start = await startOf();
    const first = await runActivity(
      env,
      acts,
      'exportBatch',
      exportInput(n, start, await currentSchemaHash()),
    );
    // The application inserts a row dated a day earlier; the retry of the batch keeps to
    // the start the run recorded, so it finds (and adopts) the first attempt's object.
    await db.query(`insert into audit_log values (79, '2020-01-01 10:00+00', 'backdated')`);
    const again = await runActivity(
      env,
      acts,
      'exportBatch',
      exportInput(n, start, await currentSchemaHash()),
    );
    assert.equal(again.kind === 'batch' && again.object, first.kind === 'batch' && first.object);
  });

  it('stores nothing for a batch whose rows are gone before any attempt stored it', async () => {
    await insertRows([90, 91]);
    const n = ++batchNo;
    const start = await startOf();
    await db.query('delete from audit_log where id in (90, 91)');
    const result = await runActivity(
      env,
      acts,
      'exportBatch',
      exportInput(n, start, await currentSchemaHash()),
    );
    assert.deepEqual(result, { kind: 'empty' });
    const stored = await listAll(s3, `${config.s3.prefix}`);
    assert.ok(
      stored.every((o) => !o.key.includes(`/test-${String(n).padStart(6, '0')}.`)),
      'no object or manifest of the batch',
    );
  });

  it('says whether an eligible row is left after the batch, on its day or a later one', async () => {
    await db.query(
      `insert into audit_log values (30, '2020-01-02 10:00+00', 'v1'), (31, '2020-01-02 11:00+00', 'v1'),
                                    (32, '2020-01-05 10:00+00', 'v1')`,
    );
    const first = await exportNext(undefined, 1);
    const second = await exportNext(first.next, 1);
    const last = await exportNext(second.next, 1);
    assert.deepEqual(
      [first, second, last].map((b) => [b.firstKey, b.following]),
      [
        ['30', { day: '2020-01-02', afterKey: '30' }], // 31 is left on the same day
        ['31', { day: '2020-01-05', afterKey: null }], // 32 is left on a later day
        ['32', null],
      ],
    );
  });

  it('refuses a corrupted object: one flipped byte fails verification and deletes nothing', async () => {
    const batch = await exportRows([30, 31, 32]);
    const bytes = await readBytes(s3, batch.object);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: batch.object, Body: bytes }));
    await assert.rejects(verify(batch.object), { name: 'VerificationError' });
    const written = await listAll(s3, deletionManifestKey(batch.object));
    assert.deepEqual(written, [], 'no deletion manifest for an object that failed verification');
    await assert.rejects(remove(batch), { name: 'VerificationError' });
    assert.deepEqual(await ids(), [30, 31, 32]);
  });

  it('fails at once, naming the key, on a truncated manifest', async () => {
    const batch = await exportRows([35, 36]);
    const key = manifestKey(batch.object);
    const text = (await readBytes(s3, key)).toString('utf8');
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: text.slice(0, 40) }));
    await assert.rejects(verify(batch.object), (err: Error) => {
      assert.equal(err.name, 'DocumentError');
      assert.ok(err.message.includes(key), err.message);
      return true;
    });
  });

  it('deletes nothing without the table lock', async () => {
    const batch = await exportRows([40, 41]);
    await verify(batch.object);
    const stranger = { ...holder, pid: holder.pid + 1_000_000 };
    await assert.rejects(remove(batch, stranger), { name: 'LockLostError' });
    assert.deepEqual(await ids(), [40, 41]);
  });
});
