import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Config } from '../../src/config';
import type { RestoreInput, RestoreResult } from '../../src/shared/restore-types';
import type { ArchiveTable, Restore } from '../../workflows';
import { testConfig } from '../helpers/config';
import { TestDatabase } from '../helpers/database';
import { startTestWorker, uniqueTaskQueue, type TestWorker } from '../helpers/worker';

const OLD = `now() - interval '30 days'`;

/** The innermost message of a workflow failure: what actually went wrong. */
function rootCause(err: Error): string {
  let e: Error = err;
  while (e.cause instanceof Error) e = e.cause;
  return e.message;
}

/** md5 over every row's text form in key order: equal means byte-identical rows. */
async function digest(db: TestDatabase, table: string): Promise<string> {
  const { md5 } = await db.one<{ md5: string }>(
    `select md5(coalesce(string_agg(t::text, E'\\n' order by id), '')) as md5 from ${table} t`,
  );
  return md5;
}

// Guarantee 5 (docs/architecture.md): archive, delete, restore gives back byte-identical rows, from the bucket alone.
describe('Restore through the real stack', function () {
  this.timeout(300_000);
  let db: TestDatabase;
  let config: Config;
  let worker: TestWorker;

  before(async () => {
    db = await TestDatabase.create();
    config = testConfig({
      database: db.name,
      prefix: `restore-${randomUUID()}/`,
      taskQueue: uniqueTaskQueue(),
      tables: [{ name: 'all_types' }, { name: 'events' }],
      overrides: (c) => {
        c.defaults = { retention_days: 7, batch_size: 40, pause_between_batches_ms: 0 };
      },
    });
    worker = await startTestWorker(config);
  });

  after(async () => {
    await worker?.stop();
    await db?.drop();
  });

  async function archive(table: string) {
    const outcome = await worker.client.workflow.execute<typeof ArchiveTable>('ArchiveTable', {
      taskQueue: worker.taskQueue,
      workflowId: `archive-${table}-${randomUUID()}`,
      args: [{ database: db.name, table }],
    });
    assert.equal(outcome.outcome, 'archived');
    return outcome;
  }

  function restore(input: Omit<RestoreInput, 'database'>): Promise<RestoreResult> {
    return worker.client.workflow.execute<typeof Restore>('Restore', {
      taskQueue: worker.taskQueue,
      workflowId: `restore-${randomUUID()}`,
      args: [{ database: db.name, ...input }],
    });
  }

  async function restored(input: Omit<RestoreInput, 'database'>) {
    const result = await restore(input);
    assert.equal(result.outcome, 'restored');
    return result;
  }

  it('gives back byte-identical rows for every common PostgreSQL type', async () => {
    await db.query(`create extension if not exists hstore`);
    await db.query(`create type mood as enum ('sad', 'ok', 'happy')`);
    await db.query(`create table all_types (
      id bigint primary key, created_at timestamptz not null,
      i2 int2, i4 int4, i8 int8, n numeric, f4 float4, f8 float8, t text, b bytea, bo bool,
      d date, tm time, ts timestamp, tstz timestamptz, iv interval, u uuid, j json, jb jsonb,
      ia int[], ta text[], ip inet, ci cidr, mac macaddr, r int4range, tr tstzrange, m mood, h hstore)`);
    await db.query(`insert into all_types values
      (1, ${OLD}, 32767, -2147483648, 9223372036854775807, 123456789012345678901234567890.123456789012345,
       'NaN', 'Infinity', E'unicode ü 漢字 🎉\\nnew line\\ttab \\\\ backslash ''single'' "double"',
       (select decode(string_agg(lpad(to_hex(g), 2, '0'), ''), 'hex') from generate_series(0, 255) g),
       true, '2020-02-29', '23:59:59.999999', '1999-12-31 23:59:59.5', '2000-01-01 00:00:00.000001+05:30',
       '1 year 2 mons -3 days 04:05:06.789', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
       '{"a" :  1,   "a": [2, 3.10]}', '{"z": 1, "a": {"b": null}}', '{1,NULL,3}', '{"a",NULL,"b c","d\\"e"}',
       '192.168.1.5/24', '10.0.0.0/8', '08:00:2b:01:02:03', '[1,10)', '[2020-01-01 00:00+00,2021-01-01 00:00+00)',
       'happy', 'a=>1, "b c"=>NULL'),
      (2, ${OLD}, -32768, 2147483647, -9223372036854775808, -0.000000000000000000000000000001,
       '-Infinity', '-0', '', '\\x', false, '0001-01-01', '00:00', '4713-01-01 00:00:00 BC', '294276-12-31 23:59:59+00',
       '-178000000 years', '00000000-0000-0000-0000-000000000000', 'null', '[]', '{}', '{}',
       '::1', '::/0', 'ff:ff:ff:ff:ff:ff', 'empty', '(,)', 'sad', ''),
      (3, ${OLD}, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null,
       null, null, null, null, null, null, null, null, null, null, null)`);
    const before = await digest(db, 'all_types');

    const archived = await archive('all_types');
    assert.equal(archived.rowsDeleted, 3);
    assert.equal((await db.one<{ n: number }>('select count(*)::int as n from all_types')).n, 0);

    const result = await restored({ table: 'all_types' });
    assert.equal(result.inserted, 3);
    assert.equal(await digest(db, 'all_types'), before);
  });

  describe('conflict strategies, on a table where half the archived keys came back with other values', () => {
    let archivedDigest: string;

    before(async () => {
      await db.query(
        `create table events (id int primary key, created_at timestamptz not null, note text)`,
      );
      await db.query(
        `insert into events select g, ${OLD} + g * interval '1 minute', 'archived ' || g from generate_series(1, 100) g`,
      );
      archivedDigest = await digest(db, 'events');
      await archive('events');
    });

    async function reinsertHalf(): Promise<string> {
      await db.query('truncate events');
      await db.query(
        `insert into events select g, now(), 'newer ' || g from generate_series(1, 100, 2) g`,
      );
      return digest(db, 'events');
    }

    it('fail: changes nothing', async () => {
      const before = await reinsertHalf();
      await assert.rejects(
        restore({ table: 'events', conflict: 'fail', ignoreWatermark: true }),
        (err: Error) => {
          assert.match(rootCause(err), /other content; nothing of this object was written/);
          return true;
        },
      );
      assert.equal(await digest(db, 'events'), before);
    });

    it("skip: keeps the table's rows and restores the rest", async () => {
      await reinsertHalf();
      const result = await restored({ table: 'events', conflict: 'skip', ignoreWatermark: true });
      assert.deepEqual([result.inserted, result.skipped, result.overwritten], [50, 50, 0]);
      const rows = await db.query<{ id: number; note: string }>(
        'select id, note from events order by id',
      );
      assert.equal(rows.length, 100);
      for (const r of rows)
        assert.equal(r.note, r.id % 2 === 1 ? `newer ${r.id}` : `archived ${r.id}`);
    });

    it('overwrite: replaces them with the archived rows', async () => {
      await reinsertHalf();
      const result = await restored({
        table: 'events',
        conflict: 'overwrite',
        ignoreWatermark: true,
      });
      assert.deepEqual([result.inserted, result.overwritten], [50, 50]);
      assert.equal(await digest(db, 'events'), archivedDigest);
    });
  });
});
