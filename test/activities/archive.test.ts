import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { MockActivityEnvironment } from '@temporalio/testing';
import pg from 'pg';
import { archiveActivities } from '../../activities/archive';
import { LOCK_CLASS_ID } from '../../activities/lock';
import { loadTableContext } from '../../activities/table-context';
import { deletionManifestKey } from '../../src/archive/layout';
import type { Config } from '../../src/config';
import { PoolRegistry } from '../../src/postgres/pool';
import { createS3Client } from '../../src/s3/client';
import type { Cursor, ExportedBatch, LockHolder } from '../../src/shared/archive-types';
import { quietLogger, runActivity } from '../helpers/activity';
import { listAll, readBytes } from '../helpers/bucket';
import { testConfig } from '../helpers/config';
import { TestDatabase } from '../helpers/database';
import { BUCKET, PG } from '../helpers/stack';

// The batch activities one at a time, against real PostgreSQL and MinIO, with the moments
// between them that a whole run never lets a test reach: a row changing after its export, a
// lost commit reply, a corrupted object, a lost lock.
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
    acts = archiveActivities({ config, env: {}, pools, s3 });
    // Stands in for the holdTableLock activity: a session holding the table's advisory lock.
    lockSession = new pg.Client({ ...PG, database: db.name });
    await lockSession.connect();
    const { rows } = await lockSession.query<{ pid: number; backend_start: string }>(
      `select pg_advisory_lock($1::int, 'audit_log'::regclass::oid::int4), pg_backend_pid() as pid,
              (select backend_start::text from pg_stat_activity where pid = pg_backend_pid()) as backend_start`,
      [LOCK_CLASS_ID],
    );
    holder = { pid: rows[0]!.pid, backendStart: rows[0]!.backend_start };
  });

  after(async () => {
    await lockSession?.end();
    await pools?.close();
    s3?.destroy();
    await db?.drop();
  });

  /** Inserts rows on one old day and exports them as one batch. */
  async function exportRows(ids: number[]): Promise<ExportedBatch> {
    await db.query(
      `insert into audit_log select id, timestamptz '2020-01-02 10:00:00+00' + id * interval '1 second', 'v1'
         from unnest($1::int[]) as id`,
      [ids],
    );
    return exportNext();
  }

  /**
   * Exports the next batch from `cursor` (by default the start of the table), with a new
   * batch number each time.
   */
  async function exportNext(
    cursor: Cursor = { day: null, afterKey: null },
    batchSize?: number,
  ): Promise<ExportedBatch> {
    const result = await runActivity(env, acts, 'exportBatch', {
      table,
      run: 'test',
      batch: ++batchNo,
      cutoff,
      cursor,
      schemaHash: await currentSchemaHash(),
      ...(batchSize !== undefined && { batchSize }),
    });
    assert.equal(result.kind, 'batch');
    return result;
  }

  async function currentSchemaHash(): Promise<string> {
    const client = await pools.get(db.name).connect();
    try {
      return (await loadTableContext({ config, env: {}, pools, s3 }, table, client)).schemaHash;
    } finally {
      client.release();
    }
  }

  async function ids(): Promise<number[]> {
    return (await db.query<{ id: number }>('select id from audit_log order by id')).map(
      (r) => r.id,
    );
  }

  it('deletes only the rows whose content is still the archived version', async () => {
    const batch = await exportRows([1, 2, 3, 4]);
    await db.query(`update audit_log set note = 'changed after export' where id = 3`);
    const verified = await runActivity(env, acts, 'verifyBatch', {
      table,
      object: batch.object,
      writeDeletionManifest: true,
    });
    assert.equal(verified.deletionManifest, deletionManifestKey(batch.object));
    const result = await runActivity(env, acts, 'deleteBatch', {
      table,
      object: batch.object,
      lock: holder,
    });
    assert.deepEqual(result, { listed: 4, deleted: 3, changed: 1, alreadyGone: 0 });
    assert.deepEqual(await ids(), [3]);

    // The changed row is archived (in its new version) by the next batch, then deleted; this
    // time through the separate deletion-manifest activity that runs from before
    // 'lean-batch-v1' still call.
    const again = await exportNext();
    assert.equal(again.rowCount, 1);
    await runActivity(env, acts, 'writeDeletionManifest', { table, object: again.object });
    assert.equal(
      (await runActivity(env, acts, 'deleteBatch', { table, object: again.object, lock: holder }))
        .deleted,
      1,
    );
    assert.deepEqual(await ids(), []);
  });

  it('deletes nothing else when retried after a commit whose reply was lost', async () => {
    const batch = await exportRows([10, 11]);
    await runActivity(env, acts, 'writeDeletionManifest', { table, object: batch.object });
    const first = await runActivity(env, acts, 'deleteBatch', {
      table,
      object: batch.object,
      lock: holder,
    });
    // Same keys back in the table (e.g. restored by someone): a retry must not touch them.
    await db.query(`insert into audit_log values (10, now(), 'restored')`);
    const retry = await runActivity(env, acts, 'deleteBatch', {
      table,
      object: batch.object,
      lock: holder,
    });
    assert.deepEqual(retry, first);
    assert.deepEqual(await ids(), [10]);
    await db.query('delete from audit_log');
  });

  it('is idempotent on export: a retried batch returns its first attempt, same object', async () => {
    const batch = await exportRows([20, 21, 22]);
    const before = await readBytes(s3, batch.object);
    const retry = await runActivity(env, acts, 'exportBatch', {
      table,
      run: 'test',
      batch: batchNo,
      cutoff,
      cursor: { day: null, afterKey: null },
      schemaHash: await currentSchemaHash(),
    });
    assert.deepEqual(retry, batch);
    assert.deepEqual(await readBytes(s3, batch.object), before);
    await db.query('delete from audit_log');
  });

  it('says whether an eligible row is left after the batch, on its day or a later one', async () => {
    await db.query('delete from audit_log');
    await db.query(
      `insert into audit_log values (30, '2020-01-02 10:00+00', 'v1'), (31, '2020-01-02 11:00+00', 'v1'),
                                    (32, '2020-01-05 10:00+00', 'v1')`,
    );
    const first = await exportNext(undefined, 1);
    const second = await exportNext(first.next, 1);
    const last = await exportNext(second.next, 1);
    assert.deepEqual(
      [first, second, last].map((b) => [b.firstKey, b.more]),
      [
        ['30', true], // 31 is left on the same day
        ['31', true], // 32 is left on a later day
        ['32', false],
      ],
    );
    await db.query('delete from audit_log');
  });

  it('refuses a corrupted object: one flipped byte fails verification and deletes nothing', async () => {
    const batch = await exportRows([30, 31, 32]);
    const bytes = await readBytes(s3, batch.object);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: batch.object, Body: bytes }));
    await assert.rejects(runActivity(env, acts, 'verifyBatch', { table, object: batch.object }), {
      name: 'VerificationError',
    });
    await assert.rejects(
      runActivity(env, acts, 'writeDeletionManifest', { table, object: batch.object }),
      {
        name: 'VerificationError',
      },
    );
    await assert.rejects(
      runActivity(env, acts, 'verifyBatch', {
        table,
        object: batch.object,
        writeDeletionManifest: true,
      }),
      { name: 'VerificationError' },
    );
    const written = await listAll(s3, deletionManifestKey(batch.object));
    assert.deepEqual(written, [], 'no deletion manifest for an object that failed verification');
    await assert.rejects(
      runActivity(env, acts, 'deleteBatch', { table, object: batch.object, lock: holder }),
      {
        name: 'VerificationError',
      },
    );
    assert.deepEqual(await ids(), [30, 31, 32]);
    await db.query('delete from audit_log');
  });

  it('deletes nothing without the table lock', async () => {
    const batch = await exportRows([40, 41]);
    await runActivity(env, acts, 'writeDeletionManifest', { table, object: batch.object });
    const stranger = { pid: holder.pid + 1_000_000, backendStart: holder.backendStart };
    await assert.rejects(
      runActivity(env, acts, 'deleteBatch', { table, object: batch.object, lock: stranger }),
      {
        name: 'LockLostError',
      },
    );
    assert.deepEqual(await ids(), [40, 41]);
    await db.query('delete from audit_log');
  });
});
