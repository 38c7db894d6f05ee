import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { MockActivityEnvironment } from '@temporalio/testing';
import { archiveActivities } from '../../activities/archive';
import { restoreActivities } from '../../activities/restore';
import { schemaActivities } from '../../activities/schema';
import type { Config } from '../../src/config';
import { PoolRegistry } from '../../src/postgres/pool';
import { createS3Client } from '../../src/store/client';
import { exportFrom, quietLogger, runActivity, storeOf } from '../helpers/activity';
import { readBytes } from '../helpers/bucket';
import { testConfig } from '../helpers/config';
import { TestDatabase } from '../helpers/database';
import { BUCKET } from '../helpers/stack';

// restoreObject alone, against real PostgreSQL and MinIO: an object that cannot be restored
// fails with one clear error, writes nothing, and leaves the session usable.
describe('restoreObject activity (real PostgreSQL and MinIO)', function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let config: Config;
  let pools: PoolRegistry;
  let s3: S3Client;
  let restore: ReturnType<typeof restoreActivities>;
  let object: string;
  const env = new MockActivityEnvironment({}, { logger: quietLogger });
  const table = { database: '', schema: 'public', table: 'audit_log' };

  before(async () => {
    db = await TestDatabase.create();
    table.database = db.name;
    await db.query(
      `create table audit_log (id int primary key, created_at timestamptz not null, note text)`,
    );
    await db.query('create table side (like audit_log including all)');
    await db.query(
      `insert into audit_log select g, timestamptz '2020-01-02 10:00+00' + g * interval '1 s', 'n' || g
         from generate_series(1, 50) as g`,
    );
    config = testConfig({ database: db.name, prefix: `restore-acts-${randomUUID()}/` });
    // One pool connection: a session left in COPY would block every later query of the test.
    pools = new PoolRegistry(config.databases, {}, 1);
    s3 = createS3Client(config.s3);
    const deps = { config, env: {}, pools, store: storeOf(config, s3) };
    const archive = archiveActivities(deps);
    restore = restoreActivities(deps);
    const { schemaHash } = await runActivity(env, schemaActivities(deps), 'snapshotSchema', table);
    const exported = await exportFrom(env, archive, {
      table,
      run: 'test',
      batch: 1,
      cutoff: new Date().toISOString(),
      cursor: { day: null, afterKey: null },
      schemaHash,
    });
    assert.ok(exported);
    object = exported.object;
  });

  after(async () => {
    await pools?.close();
    s3?.destroy();
    await db?.drop();
  });

  const restoreInto = () =>
    runActivity(env, restore, 'restoreObject', {
      source: table,
      target: { ...table, table: 'side' },
      object,
      conflict: 'fail',
      dropMissingColumns: false,
      lines: 'all',
    });

  it('refuses an object larger than its manifest says, writes nothing, and leaves the session usable', async () => {
    const stored = await readBytes(s3, object);
    try {
      await s3.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: object,
          Body: Buffer.concat([stored, stored]),
        }),
      );
      await assert.rejects(restoreInto(), (err: Error) => {
        assert.equal(err.name, 'VerificationError');
        assert.match(err.message, /bytes stored, at most \d+ expected/);
        return true;
      });
      // The pool's only session answers at once: no COPY was left open on it.
      const client = await pools.get(db.name).connect();
      try {
        const { rows } = await client.query<{ n: number }>('select count(*)::int as n from side');
        assert.equal(rows[0]!.n, 0);
      } finally {
        client.release();
      }
    } finally {
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: object, Body: stored }));
    }
  });

  it('refuses an object that is gone, naming it, and writes nothing', async () => {
    const stored = await readBytes(s3, object);
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: object }));
    try {
      await assert.rejects(restoreInto(), /the data object is missing/);
      const client = await pools.get(db.name).connect();
      try {
        const { rows } = await client.query<{ n: number }>('select count(*)::int as n from side');
        assert.equal(rows[0]!.n, 0);
      } finally {
        client.release();
      }
    } finally {
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: object, Body: stored }));
    }
  });

  it('restores every line of a sound object', async () => {
    const result = await restoreInto();
    assert.equal(result.inserted, 50);
    assert.deepEqual(
      await db.query('select * from side order by id'),
      await db.query('select * from audit_log order by id'),
    );
  });
});
