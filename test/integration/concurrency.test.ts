import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../../src/config';
import { createS3Client } from '../../src/store/client';
import type { ArchiveTableOutcome } from '../../src/shared/archive-types';
import type { ArchiveTable } from '../../workflows';
import {
  archiverLocks,
  auditRowTexts,
  byId,
  readArchive,
  type ArchivedRow,
  type RowText,
} from '../helpers/archive-checks';
import { testConfig } from '../helpers/config';
import { TestDatabase } from '../helpers/database';
import { startTestWorker, uniqueTaskQueue, type TestWorker } from '../helpers/worker';

type Archived = Extract<ArchiveTableOutcome, { outcome: 'archived' }>;

const RETENTION_DAYS = 2;

/** The usual audit table: `oldRows` rows 3 to 10 days old, `newRows` within retention. */
async function createTable(db: TestDatabase, oldRows: number, newRows: number): Promise<void> {
  await db.query(`create table audit_log (
    id bigint generated always as identity primary key,
    created_at timestamptz not null,
    actor text not null,
    payload jsonb not null)`);
  await db.query(`create index on audit_log (created_at)`);
  await db.query(
    `insert into audit_log (created_at, actor, payload)
     select now() - interval '3 days' - (g % 8) * interval '1 day' - (g % 1440) * interval '1 minute',
            'user' || (g % 31), jsonb_build_object('n', g, 'v', 0)
       from generate_series(1, $1::int) g`,
    [oldRows],
  );
  await db.query(
    `insert into audit_log (created_at, actor, payload)
     select now() - (g % 1440) * interval '1 minute', 'recent', jsonb_build_object('n', g, 'v', 0)
       from generate_series(1, $1::int) g`,
    [newRows],
  );
}

function configFor(
  db: TestDatabase,
  prefix: string,
  table: { batch_size: number; pause_between_batches_ms: number },
): Config {
  return testConfig({
    database: db.name,
    prefix,
    taskQueue: uniqueTaskQueue(),
    overrides: (c) => {
      c.defaults = { retention_days: RETENTION_DAYS, ...table };
    },
  });
}

function startArchive(worker: TestWorker, db: TestDatabase, workflowId: string) {
  return worker.client.workflow.start<typeof ArchiveTable>('ArchiveTable', {
    taskQueue: worker.taskQueue,
    workflowId,
    args: [{ database: db.name, schema: 'public', table: 'audit_log' }],
  });
}

function asArchived(outcome: ArchiveTableOutcome): Archived {
  assert.equal(outcome.outcome, 'archived', JSON.stringify(outcome));
  return outcome;
}

/** The ids of rows older than the instant. */
async function idsOlderThan(db: TestDatabase, instant: string): Promise<string[]> {
  const rows = await db.query<{ id: string }>(
    `select id::text as id from audit_log where created_at < $1::timestamptz order by id`,
    [instant],
  );
  return rows.map((r) => r.id);
}

/**
 * Keeps updating the given rows, one at a time, in random order, until stopped, and
 * remembers the latest committed version of each row it updated (as the archive would hold
 * it). An update that finds its row gone (archived and deleted) changes nothing.
 */
class RowUpdater {
  readonly latest = new Map<string, RowText>();
  updates = 0;
  private stopped = false;
  private failure: Error | undefined;
  private readonly loop: Promise<void>;

  constructor(
    private readonly db: TestDatabase,
    private readonly ids: string[],
  ) {
    // Kept until stop(), so that a failed update fails the test there, not the process.
    this.loop = this.run().catch((err: Error) => {
      this.failure = err;
    });
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const id = this.ids[Math.floor(Math.random() * this.ids.length)]!;
      const rows = await this.db.query<RowText>(
        `update audit_log
            set actor = actor || '*', payload = jsonb_set(payload, '{v}', to_jsonb($2::int))
          where id = $1::bigint
         returning id::text as id, created_at::text as created_at, actor, payload::text as payload`,
        [id, ++this.updates],
      );
      if (rows[0]) this.latest.set(id, rows[0]);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    if (this.failure) throw this.failure;
  }
}

// Guarantee 1 (docs/architecture.md): a row that changed after it was exported is not deleted in that batch, it
// is archived again later; whatever the timing, the latest version of a row is never lost.
describe('Concurrency: rows updated while ArchiveTable runs', function () {
  this.timeout(600_000);
  const OLD_ROWS = 20_000;
  const UPDATED_ROWS = 300;
  const prefix = `concurrency-${randomUUID()}/`;
  let db: TestDatabase;
  let worker: TestWorker;
  let s3: S3Client;
  let original: Map<string, RowText>;
  let updatedIds: string[];
  let updater: RowUpdater | undefined;
  let first: Archived;

  before(async () => {
    db = await TestDatabase.create();
    await createTable(db, OLD_ROWS, 1_000);
    original = await auditRowTexts(db);
    const config = configFor(db, prefix, { batch_size: 500, pause_between_batches_ms: 0 });
    worker = await startTestWorker(config);
    s3 = createS3Client(config.s3);
    // Random old rows, spread over every day and batch of the run.
    updatedIds = (
      await db.query<{ id: string }>(
        `select id::text as id from audit_log where actor <> 'recent' order by random() limit $1`,
        [UPDATED_ROWS],
      )
    ).map((r) => r.id);
  });

  after(async () => {
    await updater?.stop();
    await worker?.stop();
    s3?.destroy();
    await db?.drop();
  });

  /** The version of each row the test expects to survive somewhere: the latest one. */
  const latestOf = (id: string) => updater!.latest.get(id) ?? original.get(id)!;
  const oldIds = () => [...original.values()].filter((r) => r.actor !== 'recent').map((r) => r.id!);
  const archivedIn = (rows: ArchivedRow[], run: string) =>
    rows.filter((r) => r.object.includes(`/${run}-`));

  it('never loses the latest version of a row updated while its batch is archived', async () => {
    updater = new RowUpdater(db, updatedIds);
    const handle = await startArchive(worker, db, `concurrency-updates-${randomUUID()}`);
    first = asArchived(await handle.result());
    await updater.stop();

    assert.ok(updater.latest.size > 0.9 * UPDATED_ROWS, `${updater.latest.size} rows updated`);
    // The point of the test: some rows changed between their export and their delete.
    assert.ok(first.rowsChanged > 0, `${first.rowsChanged} rows changed during the run`);

    const table = await auditRowTexts(db);
    const archive = byId(archivedIn((await readArchive(s3, prefix)).rows, first.run));
    for (const [id, copies] of archive) assert.equal(copies.length, 1, `row ${id} archived once`);

    for (const id of oldIds()) {
      const kept = table.get(id);
      const copy = archive.get(id)?.[0];
      if (kept) {
        assert.deepEqual(kept, latestOf(id), `row ${id} in the table is its latest version`);
        // Archived but kept: only because it changed after the export.
        if (copy) assert.notDeepEqual(copy.row, kept, `row ${id} was kept though unchanged`);
      } else {
        assert.ok(copy, `row ${id} left the table without being archived`);
        assert.deepEqual(copy.row, latestOf(id), `row ${id}: the archive holds its latest version`);
      }
    }
    const keptAfterExport = [...archive.keys()].filter((id) => table.has(id));
    assert.equal(first.rowsChanged, keptAfterExport.length);
    assert.equal(first.rowsDeleted, original.size - table.size);
    assert.equal(first.rowsArchived, archive.size);
    assert.equal(await archiverLocks(db), 0, 'the run released the table lock');
  });

  it('archives the rows left behind as changed on the next run, in their latest version', async () => {
    const leftBehind = await idsOlderThan(db, first.cutoff);
    assert.equal(leftBehind.length, first.rowsChanged);

    const second = asArchived(
      await (await startArchive(worker, db, `concurrency-again-${randomUUID()}`)).result(),
    );

    assert.equal(second.rowsArchived, leftBehind.length);
    assert.equal(second.rowsDeleted, leftBehind.length);
    assert.deepEqual(await idsOlderThan(db, second.cutoff), [], 'no old row is left');
    const { rows } = await readArchive(s3, prefix);
    const firstRun = byId(archivedIn(rows, first.run));
    const secondRun = byId(archivedIn(rows, second.run));
    assert.deepEqual([...secondRun.keys()].sort(), [...leftBehind].sort());
    for (const id of oldIds()) {
      // The newest copy holds the latest version; an older copy of the same row is stale.
      const newest = secondRun.get(id) ?? firstRun.get(id);
      assert.ok(newest, `row ${id} is archived`);
      assert.equal(newest.length, 1);
      assert.deepEqual(newest[0]!.row, latestOf(id), `row ${id}: its latest version is archived`);
      if (secondRun.has(id) && firstRun.has(id))
        assert.notDeepEqual(firstRun.get(id)![0]!.row, latestOf(id));
    }
    const { recent } = await db.one<{ recent: number }>(
      `select count(*)::int as recent from audit_log where actor = 'recent'`,
    );
    assert.equal(recent, 1_000, 'rows within retention stay');
  });
});

// Guarantee 6 (docs/architecture.md): two runs over the same table at the same time cannot both delete; the
// second exits cleanly, saying who holds the table.
describe('Concurrency: two runs on the same table', function () {
  this.timeout(600_000);
  const OLD_ROWS = 30_000;
  const prefix = `concurrency-${randomUUID()}/`;
  let db: TestDatabase;
  const workers: TestWorker[] = [];
  let s3: S3Client;

  before(async () => {
    db = await TestDatabase.create();
    await createTable(db, OLD_ROWS, 500);
    // Two workers on two task queues, as two clusters or two deployments would be: the
    // workflow-id guard of one Temporal namespace cannot keep them apart.
    const table = { batch_size: 1_000, pause_between_batches_ms: 200 };
    workers.push(await startTestWorker(configFor(db, prefix, table)));
    workers.push(await startTestWorker(configFor(db, prefix, table)));
    s3 = createS3Client(workers[0]!.config.s3);
  });

  after(async () => {
    for (const w of workers) await w.stop();
    s3?.destroy();
    await db?.drop();
  });

  it('lets only one of two simultaneous runs delete; the other returns "locked", naming the holder', async () => {
    const original = await auditRowTexts(db);
    // Short ids: the holder's name (its application_name, which PostgreSQL cuts at 63 bytes)
    // holds the workflow id after the run's own mark.
    const ids = [`lock-a-${randomUUID().slice(0, 8)}`, `lock-b-${randomUUID().slice(0, 8)}`];
    const handles = await Promise.all(workers.map((w, i) => startArchive(w, db, ids[i]!)));
    const outcomes = await Promise.all(handles.map((h) => h.result()));

    const winner = outcomes.findIndex((o) => o.outcome === 'archived' && o.rowsDeleted > 0);
    assert.ok(winner >= 0, JSON.stringify(outcomes));
    const won = outcomes[winner] as Archived;
    const other = outcomes[1 - winner]!;
    if (other.outcome === 'locked') {
      assert.match(
        other.heldBy,
        new RegExp(`^audit-archiver lock [0-9a-f]{12} ${ids[winner]!} \\(pid `),
        `held by ${other.heldBy}`,
      );
    } else {
      // Only if the other run started after the first had finished: then nothing was left.
      const late = asArchived(other);
      assert.equal(late.rowsArchived, 0, JSON.stringify(outcomes));
    }

    const table = await auditRowTexts(db);
    const removed = original.size - table.size;
    const deletedByBoth = outcomes.reduce(
      (sum, o) => sum + (o.outcome === 'archived' ? o.rowsDeleted : 0),
      0,
    );
    assert.equal(deletedByBoth, removed);
    assert.equal(removed, OLD_ROWS);

    const { objects, rows } = await readArchive(s3, prefix);
    assert.ok(
      objects.every((key) => key.includes(`/${won.run}-`)),
      'every object is of the winning run',
    );
    const archived = byId(rows);
    assert.equal(archived.size, removed);
    for (const [id, copies] of archived) {
      assert.equal(copies.length, 1, `row ${id} in ${copies.map((c) => c.object).join(', ')}`);
      assert.ok(!table.has(id));
      assert.deepEqual(copies[0]!.row, original.get(id), `row ${id} archived as it was`);
    }
    assert.deepEqual(await idsOlderThan(db, won.cutoff), []);
    assert.equal(await archiverLocks(db), 0, 'no lock is left behind');
  });
});
