import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { MockActivityEnvironment } from '@temporalio/testing';
import { schemaActivities } from '../../activities/schema';
import { schemaHash } from '../../src/archive/schema-snapshot';
import type { SchemaSnapshot } from '../../src/store/documents';
import type { Config } from '../../src/config';
import { PoolRegistry } from '../../src/postgres/pool';
import { createS3Client } from '../../src/store/client';
import { getText } from '../helpers/bucket';
import { quietLogger, runActivity, storeOf } from '../helpers/activity';
import { testConfig } from '../helpers/config';
import { createAuditTable, TestDatabase } from '../helpers/database';
import { BUCKET } from '../helpers/stack';

describe('snapshotSchema activity (real PostgreSQL and MinIO)', () => {
  let db: TestDatabase;
  let config: Config;
  let pools: PoolRegistry;
  let s3: S3Client;
  let activities: ReturnType<typeof schemaActivities>;
  const env = new MockActivityEnvironment(
    { workflowExecution: { workflowId: 'wf-test', runId: 'r' } },
    { logger: quietLogger },
  );
  const prefix = `test-${randomUUID()}/`;

  before(async () => {
    db = await TestDatabase.create();
    await createAuditTable(db, { rows: 10 });
    await db.query(
      `create table "Odd ""Name"" Table" (k text primary key, at date not null, v numeric(12,2))`,
    );
    await db.query(
      `create table "slash/and%percent" (id int primary key, created_at date not null)`,
    );
    await db.query(`create table no_index (id int, created_at timestamptz)`);
    await db.query(`create table text_time (id int primary key, created_at text)`);
    config = testConfig({
      database: db.name,
      prefix,
      tables: [
        { name: 'audit_log' },
        { name: 'Odd "Name" Table', timestamp_column: 'at', primary_key: 'k' },
        { name: 'slash/and%percent' },
        { name: 'no_index' },
        { name: 'text_time' },
        { name: 'missing_table' },
      ],
    });
    pools = new PoolRegistry(config.databases, {});
    s3 = createS3Client(config.s3);
    activities = schemaActivities({ config, env: {}, pools, store: storeOf(config, s3) });
  });

  after(async () => {
    await pools.close();
    s3.destroy();
    await db.drop();
  });

  const run = (table: string) =>
    runActivity(env, activities, 'snapshotSchema', { database: db.name, schema: 'public', table });

  it('stores the columns, types and key as read from the catalog, under the table prefix', async () => {
    const result = await run('audit_log');
    assert.equal(
      result.key,
      `${prefix}${db.name}/public.audit_log/_schema/${result.schemaHash}.json`,
    );
    assert.equal(result.created, true);
    const stored = JSON.parse((await getText(s3, result.key))!) as SchemaSnapshot;
    assert.deepEqual(
      stored.columns.map((c) => `${c.name} ${c.type}${c.nullable ? '' : ' not null'}`),
      [
        'id bigint not null',
        'created_at timestamp with time zone not null',
        'actor text not null',
        'action text not null',
        'payload jsonb',
      ],
    );
    assert.deepEqual(stored.primaryKey, ['id']);
    assert.equal(stored.schemaHash, schemaHash(stored));
    assert.equal(stored.capturedBy, 'wf-test');
  });

  it('is idempotent: a second run finds its own snapshot and leaves it as it was', async () => {
    const first = await run('audit_log');
    const before = await getText(s3, first.key);
    const second = await run('audit_log');
    assert.equal(second.created, false);
    assert.equal(second.key, first.key);
    assert.equal(await getText(s3, first.key), before);
  });

  it('gives a new snapshot when the schema changes', async () => {
    const before = await run('audit_log');
    await db.query('alter table audit_log add column origin inet');
    const after = await run('audit_log');
    assert.notEqual(after.schemaHash, before.schemaHash);
    assert.equal(after.columnCount, before.columnCount + 1);
  });

  it('never overwrites a different object found under its key', async () => {
    const { key } = await run('Odd "Name" Table');
    await s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: '{"schemaHash":"other"}' }),
    );
    await assert.rejects(run('Odd "Name" Table'), { name: 'ObjectConflictError' });
    assert.equal(await getText(s3, key), '{"schemaHash":"other"}');
  });

  it('quotes hostile identifiers in SQL and percent-encodes them in keys', async () => {
    const result = await runActivity(env, activities, 'snapshotSchema', {
      database: db.name,
      table: 'slash/and%percent',
    });
    assert.equal(result.schema, 'public', 'schema defaults to public');
    assert.ok(
      result.key.startsWith(`${prefix}${db.name}/public.slash%2Fand%25percent/_schema/`),
      result.key,
    );
    assert.deepEqual(result.primaryKey, ['id']);
  });

  it('refuses a table that does not exist, without writing anything', async () => {
    await assert.rejects(run('missing_table'), {
      name: 'TableNotFoundError',
      message: /does not exist/,
    });
  });

  it('refuses a key column without a unique index of its own', async () => {
    await assert.rejects(run('no_index'), {
      name: 'TableShapeError',
      message: /primary_key: column "id" has no unique index/,
    });
  });

  it('refuses a timestamp column that is not a timestamp', async () => {
    await assert.rejects(run('text_time'), {
      name: 'TableShapeError',
      message: /timestamp_column: column "created_at" is text/,
    });
  });

  it('refuses a table the worker has not been configured for', async () => {
    await assert.rejects(run('pg_class'), { name: 'TableNotConfiguredError' });
  });
});
