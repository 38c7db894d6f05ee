import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type { ConfigInput } from '../../src/config/schema';
import { createS3Client } from '../../src/store/client';
import { listAll } from '../helpers/bucket';
import { runCli } from '../helpers/cli';
import { testConfig, testConfigInput, writeConfigFile } from '../helpers/config';
import { createAuditTable, TestDatabase } from '../helpers/database';
import { startTestWorker, uniqueTaskQueue, type TestWorker } from '../helpers/worker';

const TABLES = ['audit_a', 'audit_b', 'audit_c', 'audit_d'];

/** md5 of every row of a table in key order: equal before and after means untouched. */
async function tableDigest(db: TestDatabase, table: string): Promise<string> {
  const { digest } = await db.one<{ digest: string }>(
    `select md5(coalesce(string_agg(t::text, E'\\n' order by id), '')) as digest from ${table} t`,
  );
  return digest;
}

// `audit-archiver archive` as an operator runs it: the ArchiveAll workflow fans out over every
// configured table, through a real worker, against real PostgreSQL and MinIO.
describe('CLI: archive runs over several databases (real stack)', function () {
  this.timeout(300_000);
  const prefix = `run-${randomUUID()}/`;
  const dbs: TestDatabase[] = [];
  let config: ConfigInput;
  let worker: TestWorker;
  let s3: S3Client;
  let configFile: string;

  before(async () => {
    for (let i = 0; i < 3; i++) {
      const db = await TestDatabase.create();
      dbs.push(db);
      for (const table of TABLES) await createAuditTable(db, { table, rows: 300 });
    }
    config = testConfigInput({ database: dbs[0]!.name, prefix, taskQueue: uniqueTaskQueue() });
    config.defaults = {
      retention_days: 7,
      batch_size: 100,
      pause_between_batches_ms: 0,
      throttle: { nice_ratio: 0 },
    };
    config.archive = {
      max_parallel_tables: 4,
      max_parallel_databases: 2,
      max_parallel_tables_per_database: 2,
    };
    const template = config.databases[0]!;
    config.databases = dbs.map((db) => ({
      ...template,
      name: db.name,
      tables: TABLES.map((name) => ({ name, timestamp_column: 'created_at', primary_key: 'id' })),
    }));
    configFile = writeConfigFile(config);
    const parsed = testConfig({
      database: dbs[0]!.name,
      prefix,
      overrides: (c) => Object.assign(c, config),
    });
    worker = await startTestWorker(parsed);
    s3 = createS3Client(parsed.s3);
  });

  after(async () => {
    await worker?.stop();
    s3?.destroy();
    for (const db of dbs) await db.drop();
  });

  it('writes nothing on a dry run, and reports what it would archive per table', async () => {
    const bucketBefore = await listAll(s3, prefix);
    const digests = await Promise.all(TABLES.map((t) => tableDigest(dbs[0]!, t)));
    const { code, stdout, stderr } = await runCli([
      'archive',
      '--config',
      configFile,
      '--dry-run',
      '--database',
      dbs[0]!.name,
    ]);
    assert.equal(code, 0, stderr + stdout);
    const { eligible } = await dbs[0]!.one<{ eligible: string }>(
      `select count(*)::text as eligible from audit_a where created_at < now() - interval '7 days'`,
    );
    assert.match(stdout, new RegExp(`${dbs[0]!.name} public\\.audit_a\\s+${eligible}\\s`));
    assert.match(stdout, /dry run finished: 4 tables, none failed; nothing was written/);
    assert.deepEqual(
      await listAll(s3, prefix),
      bucketBefore,
      'bucket unchanged, watermark included',
    );
    assert.deepEqual(
      await Promise.all(TABLES.map((t) => tableDigest(dbs[0]!, t))),
      digests,
      'tables unchanged',
    );
  });

  it('archives 11 of 12 tables when one is broken, names the broken one, and exits 1', async () => {
    // Broken after the config was written: its timestamp column is gone.
    await dbs[1]!.query('alter table audit_c drop column created_at');
    const { code, stdout } = await runCli(['archive', '--config', configFile]);
    assert.equal(code, 1, stdout);
    const archived = stdout.split('\n').filter((l) => /^ {2}archived {9}/.test(l));
    assert.equal(archived.length, 11, stdout);
    assert.match(
      stdout,
      new RegExp(
        `FAILED {11}${dbs[1]!.name} public\\.audit_c: .*timestamp_column: column "created_at" does not exist`,
      ),
    );
    assert.match(stdout, /1 of 12 tables failed/);
    assert.match(
      stdout,
      /follow it in the Web UI: http:\/\/127\.0\.0\.1:8233\/namespaces\/default\/workflows\/archive-run%2F/,
    );
    for (const db of dbs) {
      for (const table of TABLES) {
        if (db === dbs[1] && table === 'audit_c') continue;
        const { stale } = await db.one<{ stale: string }>(
          `select count(*)::text as stale from ${table} where created_at < now() - interval '7 days' - interval '1 minute'`,
        );
        assert.equal(stale, '0', `${db.name} ${table} has no old rows left`);
      }
    }
  });
});
