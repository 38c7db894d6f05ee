import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { MockActivityEnvironment } from '@temporalio/testing';
import { archiveActivities } from '../../activities/archive';
import { schemaActivities } from '../../activities/schema';
import { validateActivities } from '../../activities/validate';
import {
  deleteIntentKey,
  deletionManifestKey,
  deletionReceiptKey,
  manifestKey,
} from '../../src/store/layout';
import {
  DELETE_INTENT_FORMAT,
  DELETION_RECEIPT_FORMAT,
  type DeletionManifest,
  type DeletionReceipt,
  type ObjectManifest,
} from '../../src/store/documents';
import type { Config } from '../../src/config';
import { PoolRegistry } from '../../src/postgres/pool';
import { createS3Client } from '../../src/store/client';
import { TableNotConfiguredError } from '../../src/shared/errors';
import type { ValidateTableInput, ValidateTableResult } from '../../src/shared/validate-types';
import { exportFrom, quietLogger, runActivity, storeOf } from '../helpers/activity';
import { readBytes, readJsonObject } from '../helpers/bucket';
import { testConfig } from '../helpers/config';
import { TestDatabase } from '../helpers/database';
import { BUCKET } from '../helpers/stack';

// validateTable alone, against real PostgreSQL and MinIO, on an archive written by the archive
// activities: each kind of inconsistency between the bucket's documents is found and named by
// the key at fault, and problems are returned, never thrown.
describe('validateTable activity (real PostgreSQL and MinIO)', function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let config: Config;
  let pools: PoolRegistry;
  let s3: S3Client;
  let archive: ReturnType<typeof archiveActivities>;
  let acts: ReturnType<typeof validateActivities>;
  let objects: string[];
  let schemaKey: string;
  const env = new MockActivityEnvironment({}, { logger: quietLogger });
  const table = { database: '', schema: 'public', table: 'audit_log' };

  before(async () => {
    db = await TestDatabase.create();
    table.database = db.name;
    await db.query(
      `create table audit_log (id int primary key, created_at timestamptz not null, note text)`,
    );
    // Three objects: days 2020-01-02 (two batches of 3) and 2020-01-03 (one of 2).
    await db.query(
      `insert into audit_log values
         (1, '2020-01-02 01:00+00', 'a'), (2, '2020-01-02 02:00+00', 'b'), (3, '2020-01-02 03:00+00', 'c'),
         (4, '2020-01-02 04:00+00', 'd'), (5, '2020-01-02 05:00+00', 'e'), (6, '2020-01-02 06:00+00', 'f'),
         (7, '2020-01-03 01:00+00', 'g'), (8, '2020-01-03 02:00+00', 'h')`,
    );
    config = testConfig({
      database: db.name,
      prefix: `validate-acts-${randomUUID()}/`,
      overrides: (c) => {
        c.defaults = { retention_days: 7, batch_size: 3 };
      },
    });
    pools = new PoolRegistry(config.databases, {});
    s3 = createS3Client(config.s3);
    const deps = { config, env: {}, pools, store: storeOf(config, s3) };
    archive = archiveActivities(deps);
    acts = validateActivities(deps);
    const snapshot = await runActivity(env, schemaActivities(deps), 'snapshotSchema', table);
    schemaKey = snapshot.key;
    objects = await exportAll(snapshot.schemaHash);
  });

  after(async () => {
    await pools?.close();
    s3?.destroy();
    await db?.drop();
  });

  /** Exports every row as verified objects with deletion manifests (no delete: rows stay). */
  async function exportAll(schemaHash: string): Promise<string[]> {
    const out: string[] = [];
    let cursor: { day: string | null; afterKey: string | null } = { day: null, afterKey: null };
    for (let batch = 1; ; batch++) {
      const result = await exportFrom(env, archive, {
        table,
        run: 'test',
        batch,
        cutoff: new Date().toISOString(),
        cursor,
        schemaHash,
      });
      if (!result) return out;
      await runActivity(env, archive, 'verifyBatch', { table, object: result.object });
      out.push(result.object);
      cursor = result.next;
    }
  }

  const validate = (input: Partial<ValidateTableInput> = {}): Promise<ValidateTableResult> =>
    runActivity(env, acts, 'validateTable', {
      table,
      sampleSize: 20,
      maxProblems: 200,
      ...input,
    });

  const put = (key: string, body: string | Uint8Array) =>
    s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
  const remove = (key: string) => s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));

  /** Runs `fn` after `change`, then puts every listed key back as it was (or removes it). */
  async function withChanged(
    keys: string[],
    change: () => Promise<unknown>,
    fn: () => Promise<void>,
  ): Promise<void> {
    const saved = new Map<string, Buffer | undefined>();
    for (const key of keys) saved.set(key, await readBytes(s3, key).catch(() => undefined));
    await change();
    try {
      await fn();
    } finally {
      for (const [key, bytes] of saved) await (bytes ? put(key, bytes) : remove(key));
    }
  }

  it('finds nothing wrong in a sound archive and counts its objects and rows', async () => {
    assert.equal(objects.length, 3);
    const result = await validate();
    assert.deepEqual(result.problems, []);
    assert.equal(result.problemCount, 0);
    assert.equal(result.objects, 3);
    assert.equal(result.rows, 8);
    assert.equal(result.sampled, 0, 'nothing was deleted, so there is nothing to sample');
  });

  it('checks only the objects of the day range', async () => {
    const result = await validate({ startDate: '2020-01-03', endDate: '2020-01-03' });
    assert.equal(result.objects, 1);
    assert.equal(result.rows, 2);
  });

  it('reports a deletion manifest whose fingerprint differs from its line', async () => {
    const key = deletionManifestKey(objects[0]!);
    await withChanged(
      [key],
      async () => {
        const doc = await readJsonObject<DeletionManifest>(s3, key);
        doc.fingerprints[1] = '0'.repeat(32);
        await put(key, JSON.stringify(doc));
      },
      async () => {
        const result = await validate();
        assert.deepEqual(result.problems, [
          { key, problem: `1 fingerprints differ from the object's lines (first key: 2)` },
        ]);
      },
    );
  });

  it('reports a deletion manifest listing a key the object does not hold', async () => {
    const key = deletionManifestKey(objects[1]!);
    await withChanged(
      [key],
      async () => {
        const doc = await readJsonObject<DeletionManifest>(s3, key);
        doc.keys[0] = '99';
        await put(key, JSON.stringify(doc));
      },
      async () => {
        const result = await validate();
        assert.deepEqual(result.problems, [
          { key, problem: `1 of its 3 keys are not in the object (first: 99)` },
        ]);
      },
    );
  });

  it('reports a missing schema snapshot once, however many manifests name it', async () => {
    await withChanged(
      [schemaKey],
      () => remove(schemaKey),
      async () => {
        const result = await validate();
        assert.equal(result.problemCount, 1);
        assert.equal(result.problems[0]!.key, schemaKey);
        assert.match(
          result.problems[0]!.problem,
          /schema snapshot is missing; 3 manifests name it/,
        );
      },
    );
  });

  it('reports a deletion receipt whose deletion manifest is gone, and each row it claims deleted that is still there', async () => {
    const object = objects[2]!;
    await withChanged(
      [deletionManifestKey(object), deletionReceiptKey(object)],
      async () => {
        await remove(deletionManifestKey(object));
        // A receipt that says rows 7 and 8 were deleted; they were not.
        const receipt: DeletionReceipt = {
          format: DELETION_RECEIPT_FORMAT,
          object,
          listed: 2,
          deleted: 2,
          changed: 0,
          alreadyGone: 0,
          deletedKeys: ['7', '8'],
          txid: '1',
          workflowId: 'test',
          deletedAt: new Date().toISOString(),
        };
        await put(deletionReceiptKey(object), JSON.stringify(receipt));
      },
      async () => {
        const result = await validate();
        const stillThere = (id: number) => ({
          key: object,
          problem: `row id = ${id} is still in the source table, identical, though the deletion receipt says it was deleted`,
        });
        assert.deepEqual(result.problems, [
          {
            key: deletionManifestKey(object),
            problem: `is missing, but ${deletionReceiptKey(object)} says the batch was deleted`,
          },
          stillThere(7),
          stillThere(8),
        ]);
        assert.equal(result.sampled, 2, 'only rows of objects with a deletion receipt are sampled');
      },
    );
  });

  it('reports documents left behind by a data object that is gone, by the data key', async () => {
    const object = objects[2]!;
    await withChanged(
      [object, manifestKey(object)],
      async () => {
        await remove(object);
        await remove(manifestKey(object));
      },
      async () => {
        const result = await validate();
        assert.deepEqual(result.problems, [
          {
            key: object,
            problem: `the data object and its manifest are missing; ${deletionManifestKey(object)} is there`,
          },
        ]);
      },
    );
    await withChanged(
      [object],
      () => remove(object),
      async () => {
        const result = await validate();
        assert.deepEqual(result.problems, [
          {
            key: object,
            problem: `the data object is missing; its manifest ${manifestKey(object)} is there`,
          },
        ]);
      },
    );
  });

  it('reports a manifest that is not JSON, not an object, or describes another object', async () => {
    const [first, second, third] = objects.map(manifestKey) as [string, string, string];
    await withChanged(
      [first, second, third],
      async () => {
        await put(first, '{"format":');
        const doc = await readJsonObject<ObjectManifest>(s3, second);
        await put(second, JSON.stringify({ ...doc, object: objects[0] }));
        await put(third, 'null');
      },
      async () => {
        const result = await validate();
        assert.deepEqual(result.problems, [
          { key: first, problem: 'is not valid JSON (truncated or damaged?)' },
          { key: second, problem: `describes another object, ${objects[0]}` },
          { key: third, problem: 'is not a JSON object' },
        ]);
      },
    );
  });

  it('reports a delete that committed but lost its receipt, and not one whose transaction rolled back', async () => {
    const [object] = objects as [string];
    // Transaction ids PostgreSQL knows the fate of: one committed, one rolled back.
    const committed = (await db.one<{ txid: string }>('select txid_current()::text as txid')).txid;
    const client = await db.client.connect();
    let aborted: string;
    try {
      await client.query('begin');
      aborted = (await client.query<{ txid: string }>('select txid_current()::text as txid'))
        .rows[0]!.txid;
      await client.query('rollback');
    } finally {
      client.release();
    }
    const intent = (txid: string) => ({
      format: DELETE_INTENT_FORMAT,
      object,
      listed: 3,
      deleted: 3,
      changed: 0,
      alreadyGone: 0,
      deletedKeys: ['1', '2', '3'],
      txid,
      workflowId: 'test',
      createdAt: new Date().toISOString(),
    });
    const keys = [deleteIntentKey(object, committed), deleteIntentKey(object, aborted)];
    await withChanged(
      keys,
      async () => {
        await put(keys[0]!, JSON.stringify(intent(committed)));
        await put(keys[1]!, JSON.stringify(intent(aborted)));
      },
      async () => {
        const result = await validate();
        assert.deepEqual(result.problems, [
          {
            key: deletionReceiptKey(object),
            problem: `is missing, but delete transaction ${committed} committed: 3 rows were deleted (their keys are in ${keys[0]}), and a restore would leave them out`,
          },
        ]);
      },
    );
  });

  it('lists at most maxProblems problems and counts them all', async () => {
    const keys = objects.map(manifestKey);
    await withChanged(
      keys,
      () => Promise.all(keys.map(remove)),
      async () => {
        const result = await validate({ maxProblems: 2 });
        assert.equal(result.problemCount, 3);
        assert.equal(result.problems.length, 2);
      },
    );
  });

  it('fails at once for a table the config does not list', async () => {
    await assert.rejects(
      runActivity(env, acts, 'validateTable', {
        table: { ...table, table: 'nope' },
        sampleSize: 1,
        maxProblems: 1,
      }),
      TableNotConfiguredError,
    );
  });
});
