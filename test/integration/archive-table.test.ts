import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type { ObjectManifest, Watermark } from '../../src/store/documents';
import type { Config } from '../../src/config';
import { createS3Client } from '../../src/store/client';
import { archiveTableWorkflowId, type ArchiveTableOutcome } from '../../src/shared/archive-types';
import type { ArchiveTable } from '../../workflows';
import { listAll, readJsonObject, readRows } from '../helpers/bucket';
import { testConfig } from '../helpers/config';
import { TestDatabase } from '../helpers/database';
import { startTestWorker, uniqueTaskQueue, type TestWorker } from '../helpers/worker';

const DAYS = 10;
const ROWS = 20_000;
const RETENTION_DAYS = 3;

// Guarantees 1 to 3 (docs/architecture.md): exactly the old rows leave the table, each into a verified object of its UTC
// day, with manifests beside it, every line PostgreSQL's own text form of the row.
describe('ArchiveTable through the real stack', function () {
  this.timeout(300_000);
  let db: TestDatabase;
  let config: Config;
  let worker: TestWorker;
  let s3: S3Client;
  const prefix = `archive-${randomUUID()}/`;
  let expected: Map<string, Record<string, string | null>>;

  before(async () => {
    db = await TestDatabase.create();
    await db.query(`create table audit_log (
      id bigint generated always as identity primary key,
      created_at timestamptz not null,
      actor text not null,
      action text,
      amount numeric,
      payload jsonb)`);
    await db.query(`create index on audit_log (created_at)`);
    // ROWS rows over DAYS days, spread through each day; 7 of the days are past retention.
    await db.query(
      `insert into audit_log (created_at, actor, action, amount, payload)
       select now() - (g % $2::int) * interval '1 day' - (g % 1440) * interval '1 minute',
              'user' || (g % 97), case when g % 5 = 0 then null else 'update' end,
              (g * 1.000000000000000001)::numeric, jsonb_build_object('n', g, 'q', 'a"b\\c')
         from generate_series(1, $1::int) g`,
      [ROWS, DAYS],
    );
    config = testConfig({
      database: db.name,
      prefix,
      taskQueue: uniqueTaskQueue(),
      overrides: (c) => {
        c.defaults = {
          retention_days: RETENTION_DAYS,
          batch_size: 1_000,
          pause_between_batches_ms: 0,
        };
      },
    });
    worker = await startTestWorker(config);
    s3 = createS3Client(config.s3);
  });

  after(async () => {
    await worker?.stop();
    s3?.destroy();
    await db?.drop();
  });

  async function archive(): Promise<Extract<ArchiveTableOutcome, { outcome: 'archived' }>> {
    const ref = { database: db.name, schema: 'public', table: 'audit_log' };
    const outcome = await worker.client.workflow.execute<typeof ArchiveTable>('ArchiveTable', {
      taskQueue: worker.taskQueue,
      workflowId: `${archiveTableWorkflowId(ref)}-${randomUUID()}`,
      args: [ref],
    });
    assert.equal(outcome.outcome, 'archived');
    return outcome;
  }

  /** Each column's text form as PostgreSQL prints it in the archiver's session settings. */
  async function textForms(where: string): Promise<Map<string, Record<string, string | null>>> {
    const rows = await db.query<Record<string, string | null>>(
      `select id::text as id, created_at::text as created_at, actor, action,
              amount::text as amount, payload::text as payload
         from audit_log where ${where}`,
    );
    return new Map(rows.map((r) => [r.id!, r]));
  }

  it('moves exactly the rows past retention into verified day objects', async () => {
    const { cutoffRows } = await db.one<{ cutoffRows: string }>(
      `select count(*)::text as "cutoffRows" from audit_log where created_at < now() - interval '${RETENTION_DAYS} days'`,
    );
    expected = await textForms(
      `created_at < now() - interval '${RETENTION_DAYS} days' - interval '1 minute'`,
    );
    const before = Number(
      (await db.query<{ n: string }>('select count(*)::text as n from audit_log'))[0]!.n,
    );

    const result = await archive();

    const remaining = await db.query<{ n: string; oldest: string }>(
      `select count(*)::text as n, min(created_at)::text as oldest from audit_log`,
    );
    const removed = before - Number(remaining[0]!.n);
    assert.equal(result.rowsDeleted, removed);
    assert.equal(result.rowsArchived, removed);
    assert.ok(
      removed >= Number(cutoffRows) - 50 && removed <= Number(cutoffRows) + 50,
      `${removed} vs ${cutoffRows}`,
    );
    const { stale } = await db.one<{ stale: string }>(
      `select count(*)::text as stale from audit_log where created_at < $1::timestamptz`,
      [result.cutoff],
    );
    assert.equal(stale, '0', 'no row older than the cutoff is left');

    const keys = await listAll(s3, prefix);
    const data = keys.filter((k) => k.key.endsWith('.jsonl.gz'));
    const seen = new Set<string>();
    let total = 0;
    const days = new Set<string>();
    for (const { key } of data) {
      const stem = key.slice(0, -'.jsonl.gz'.length);
      for (const suffix of ['.manifest.json', '.deletion.json', '.deleted.json']) {
        assert.ok(
          keys.some((k) => k.key === stem + suffix),
          `${stem}${suffix} exists`,
        );
      }
      const manifest = await readJsonObject<ObjectManifest>(s3, `${stem}.manifest.json`);
      assert.match(
        key,
        new RegExp(
          `/year=${manifest.day.slice(0, 4)}/month=${manifest.day.slice(5, 7)}/day=${manifest.day.slice(8)}/`,
        ),
      );
      days.add(manifest.day);
      const rows = await readRows(s3, key);
      assert.equal(rows.length, manifest.rowCount);
      total += rows.length;
      for (const row of rows) {
        assert.equal(
          row.created_at!.slice(0, 10),
          manifest.day,
          'every row of an object is of its day',
        );
        assert.ok(!seen.has(row.id!), `row ${row.id} archived once`);
        seen.add(row.id!);
        const want = expected.get(row.id!);
        if (want) assert.deepEqual(row, want, `row ${row.id} is PostgreSQL's text form`);
      }
    }
    assert.equal(total, removed, 'object row counts sum to the rows removed');
    assert.ok(days.size >= 7, `${days.size} day partitions`);
    const watermark = await readJsonObject<Watermark>(
      s3,
      `${prefix}${db.name}/public.audit_log/_state/watermark.json`,
    );
    assert.ok(watermark.archivedThrough < result.cutoff.replace('T', ' '));
  });

  it('writes nothing and archives nothing on a second run', async () => {
    const before = await listAll(s3, prefix);
    const result = await archive();
    assert.equal(result.rowsArchived, 0);
    assert.deepEqual(await listAll(s3, prefix), before);
  });

  it('archives rows inserted later with timestamps already past retention', async () => {
    await db.query(
      `insert into audit_log (created_at, actor, action) select now() - interval '40 days' + g * interval '1 second', 'late', 'backdated' from generate_series(1, 37) g`,
    );
    const result = await archive();
    assert.equal(result.rowsArchived, 37);
    assert.equal(result.rowsDeleted, 37);
    const { n } = await db.one<{ n: string }>(
      `select count(*)::text as n from audit_log where actor = 'late'`,
    );
    assert.equal(n, '0');
  });
});
