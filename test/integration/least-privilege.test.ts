import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListObjectsV2Command,
  PutBucketPolicyCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import pg from 'pg';
import { createActivities } from '../../activities';
import type { Config } from '../../src/config';
import { quoteIdent } from '../../src/postgres/identifiers';
import { PoolRegistry } from '../../src/postgres/pool';
import { Bucket } from '../../src/store/bucket';
import { createS3Client } from '../../src/store/client';
import type { ArchiveTable } from '../../workflows';
import { storeOf } from '../helpers/activity';
import { listAll } from '../helpers/bucket';
import { runCli } from '../helpers/cli';
import { testConfig, testConfigInput, writeConfigFile } from '../helpers/config';
import { createAuditTable, TestDatabase, withDatabase } from '../helpers/database';
import {
  BUCKET,
  LOCKED_BUCKET,
  MINIO_ENDPOINT,
  PG,
  PROJECT_DIR,
  TEMPORAL_ADDRESS,
  TEMPORAL_NAMESPACE,
} from '../helpers/stack';
import { uniqueTaskQueue, testSinks, workflowBundle } from '../helpers/worker';

// docs/security.md, tested as written: the PostgreSQL role of deploy/postgres/least-privilege.sql
// and the S3 policy of deploy/s3/archiver-policy.json are all the archiver needs for a whole
// archive, a restore and the doctor, and they refuse what it never does.

const SQL_FILE = path.join(PROJECT_DIR, 'deploy', 'postgres', 'least-privilege.sql');
const POLICY_FILE = path.join(PROJECT_DIR, 'deploy', 's3', 'archiver-policy.json');
const PASSWORD_ENV = 'AA_LEAST_PRIVILEGE_PASSWORD';

/** The SQL file run by psql as a superuser would, with the documented variables. */
function runSqlFile(database: string, variables: Record<string, string>): Promise<string> {
  const args = ['-X', '-q', '-h', PG.host, '-p', String(PG.port), '-U', PG.user, '-d', database];
  for (const [k, v] of Object.entries(variables)) args.push('-v', `${k}=${v}`);
  args.push('-f', SQL_FILE);
  return new Promise((resolve, reject) => {
    execFile('psql', args, (err, stdout, stderr) => {
      if (err) reject(new Error(`psql -f ${SQL_FILE}: ${stderr}`, { cause: err }));
      else resolve(stdout);
    });
  });
}

/** The policy file for another bucket and prefix: the example's names replaced, nothing else. */
function policyFor(bucket: string, prefix: string): string {
  const text = readFileSync(POLICY_FILE, 'utf8');
  assert.ok(text.includes('arn:aws:s3:::audit-archive/archives/'), 'the example names its bucket');
  return JSON.stringify(
    JSON.parse(text, (_key, value: unknown) =>
      typeof value === 'string'
        ? value
            .replace(/^arn:aws:s3:::audit-archive(\/archives\/)?/, (_m, sub?: string) =>
              sub ? `arn:aws:s3:::${bucket}/${prefix}` : `arn:aws:s3:::${bucket}`,
            )
            .replace(/^archives\//, prefix)
        : value,
    ),
  );
}

interface TemporaryCredentials {
  AWS_ACCESS_KEY_ID: string;
  AWS_SECRET_ACCESS_KEY: string;
  AWS_SESSION_TOKEN: string;
}

/** MinIO's STS AssumeRole: temporary credentials that can do no more than `policy` allows. */
async function assumeRole(policy: string): Promise<TemporaryCredentials> {
  const sts = new STSClient({
    region: 'us-east-1',
    endpoint: MINIO_ENDPOINT,
    credentials: {
      accessKeyId: process.env.MINIO_ROOT_USER ?? 'minioadmin',
      secretAccessKey: process.env.MINIO_ROOT_PASSWORD ?? 'minioadmin',
    },
  });
  try {
    const out = await sts.send(
      new AssumeRoleCommand({
        RoleArn: 'arn:aws:iam::000000000000:role/audit-archiver',
        RoleSessionName: 'least-privilege-test',
        Policy: policy,
        DurationSeconds: 3600,
      }),
    );
    const c = out.Credentials!;
    return {
      AWS_ACCESS_KEY_ID: c.AccessKeyId!,
      AWS_SECRET_ACCESS_KEY: c.SecretAccessKey!,
      AWS_SESSION_TOKEN: c.SessionToken!,
    };
  } finally {
    sts.destroy();
  }
}

function s3With(credentials: TemporaryCredentials): S3Client {
  return new S3Client({
    region: 'us-east-1',
    endpoint: MINIO_ENDPOINT,
    forcePathStyle: true,
    maxAttempts: 1,
    credentials: {
      accessKeyId: credentials.AWS_ACCESS_KEY_ID,
      secretAccessKey: credentials.AWS_SECRET_ACCESS_KEY,
      sessionToken: credentials.AWS_SESSION_TOKEN,
    },
  });
}

async function refused(call: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(call, (err: Error & { $metadata?: { httpStatusCode?: number } }) => {
    assert.equal(err.name, 'AccessDenied', `${what}: ${err.name} ${err.message}`);
    assert.equal(err.$metadata?.httpStatusCode, 403, what);
    return true;
  });
}

describe('least privilege: the PostgreSQL role and the S3 policy of deploy/ (real stack)', function () {
  this.timeout(300_000);
  const role = `aa_lp_${randomBytes(5).toString('hex')}`;
  const password = randomBytes(18).toString('base64url');
  const prefix = `least-privilege-${randomUUID()}/`;
  let db: TestDatabase;
  let config: Config;
  let configFile: string;
  let credentials: TemporaryCredentials;
  let restricted: S3Client;
  let root: S3Client;
  let worker: { client: Client; stop(): Promise<void> };
  let before_: string;
  let total: number;
  let old: number;

  const env = () => ({ ...credentials, [PASSWORD_ENV]: password });
  const count = async () =>
    (await db.one<{ n: number }>('select count(*)::int as n from public.audit_log')).n;
  /** Every row in its text form, in key order: what an exact round trip gives back. */
  const contents = async () =>
    (
      await db.one<{ rows: string }>(
        "select string_agg(t::text, E'\\n' order by id) as rows from public.audit_log t",
      )
    ).rows;

  /** A real worker whose only database role and S3 credentials are the restricted ones. */
  async function startWorker(): Promise<typeof worker> {
    const nativeConnection = await NativeConnection.connect({ address: TEMPORAL_ADDRESS });
    const connection = await Connection.connect({ address: TEMPORAL_ADDRESS });
    const pools = new PoolRegistry(config.databases, env());
    const s3 = s3With(credentials);
    const w = await Worker.create({
      connection: nativeConnection,
      namespace: TEMPORAL_NAMESPACE,
      taskQueue: config.temporal.task_queue,
      workflowBundle: await workflowBundle(),
      sinks: testSinks(),
      activities: createActivities({ config, env: env(), pools, store: storeOf(config, s3) }),
    });
    const running = w.run();
    return {
      client: new Client({ connection, namespace: TEMPORAL_NAMESPACE }),
      async stop() {
        w.shutdown();
        await running;
        await pools.close();
        s3.destroy();
        await connection.close();
        await nativeConnection.close();
      },
    };
  }

  before(async () => {
    db = await TestDatabase.create();
    await createAuditTable(db, { rows: 300 });
    total = await count();
    old = (
      await db.one<{ n: number }>(
        `select count(*)::int as n from public.audit_log where created_at < now() - interval '7 days'`,
      )
    ).n;
    assert.ok(old > 0 && old < total);
    before_ = await contents();

    await runSqlFile(db.name, { role, tables: 'public.audit_log' });
    // As the SQL file says: the password is set apart from it (here by the superuser).
    await withDatabase(db.name, (c) =>
      c.query(`alter role ${quoteIdent(role)} password ${c.escapeLiteral(password)}`),
    );

    credentials = await assumeRole(policyFor(BUCKET, prefix));
    restricted = s3With(credentials);
    root = createS3Client(testConfig({ database: db.name, prefix }).s3);

    const options = {
      database: db.name,
      prefix,
      taskQueue: uniqueTaskQueue(),
      overrides: (c: ReturnType<typeof testConfigInput>) => {
        c.defaults = { retention_days: 7, batch_size: 50 };
        const database = c.databases[0]!;
        database.user = role;
        database.password_env = PASSWORD_ENV;
      },
    };
    config = testConfig(options);
    configFile = writeConfigFile(testConfigInput(options));
    worker = await startWorker();
  });

  after(async () => {
    await worker?.stop();
    restricted?.destroy();
    root?.destroy();
    await db?.drop();
    // Roles belong to the cluster, not the database: the test's own goes too.
    await withDatabase('postgres', (c) => c.query(`drop role if exists ${quoteIdent(role)}`));
  });

  it('creates a login role that is no superuser and owns nothing, and can run the file again', async () => {
    await runSqlFile(db.name, { role, tables: 'public.audit_log' });
    const [r] = await db.query<{
      rolsuper: boolean;
      rolcreatedb: boolean;
      rolcreaterole: boolean;
      owns: number;
    }>(
      `select rolsuper, rolcreatedb, rolcreaterole,
              (select count(*)::int from pg_catalog.pg_class c where c.relowner = r.oid) as owns
         from pg_catalog.pg_roles r where rolname = $1::text`,
      [role],
    );
    assert.deepEqual(r, { rolsuper: false, rolcreatedb: false, rolcreaterole: false, owns: 0 });
    const privileges = await db.query<{ privilege_type: string }>(
      `select privilege_type from information_schema.role_table_grants
        where grantee = $1::text and table_name = 'audit_log' order by 1`,
      [role],
    );
    assert.deepEqual(
      privileges.map((p) => p.privilege_type),
      ['DELETE', 'INSERT', 'SELECT'],
    );
  });

  it('stops with the reason and creates nothing when a variable is missing or a table does not exist', async () => {
    const other = `aa_lp_${randomBytes(5).toString('hex')}`;
    await assert.rejects(runSqlFile(db.name, { role: other }), /ERROR: +set the archived tables/);
    await assert.rejects(
      runSqlFile(db.name, { tables: 'public.audit_log' }),
      /ERROR: +set the role name/,
    );
    await assert.rejects(
      runSqlFile(db.name, { role: other, tables: 'public.audit_log,public.no_such_table' }),
      /ERROR: +relation "public.no_such_table" does not exist/,
    );
    const roles = await db.query('select 1 from pg_catalog.pg_roles where rolname = $1::text', [
      other,
    ]);
    assert.deepEqual(roles, []);
  });

  it('passes the doctor as the role under the policy, and leaves no probe object behind', async () => {
    const { code, stdout, stderr } = await runCli(['doctor', '--config', configFile], env());
    assert.equal(code, 0, `${stdout}\n${stderr}`);
    assert.match(stdout, /SELECT and DELETE granted/);
    // The doctor removes its probes quietly; were DeleteObject refused, they would stay.
    assert.deepEqual(
      (await listAll(root, `${prefix}_doctor/`)).map((o) => o.key),
      [],
    );
  });

  it('archives as the role under the policy: every old row exported, verified and deleted', async () => {
    const outcome = await worker.client.workflow.execute<typeof ArchiveTable>('ArchiveTable', {
      taskQueue: config.temporal.task_queue,
      workflowId: `least-privilege-archive-${randomUUID()}`,
      args: [{ database: db.name, table: 'audit_log' }],
    });
    assert.equal(outcome.outcome, 'archived');
    assert.ok(outcome.outcome === 'archived');
    assert.equal(outcome.rowsArchived, old);
    assert.equal(outcome.rowsDeleted, old);
    assert.equal(await count(), total - old);
    const objects = await listAll(root, prefix);
    assert.ok(objects.some((o) => o.key.endsWith('.jsonl.gz')));
  });

  it('restores as the role under the policy: every deleted row back, exactly as it was', async () => {
    const { code, stdout, stderr } = await runCli(
      ['restore', '--config', configFile, '-d', db.name, '-t', 'audit_log', '--restore-all'],
      env(),
    );
    assert.equal(code, 0, `${stdout}\n${stderr}`);
    assert.match(stdout, new RegExp(`^restore into .* ${old} rows`, 'm'));
    assert.equal(await count(), total);
    assert.equal(await contents(), before_);
  });

  describe('PostgreSQL refuses the role what the archiver never does', () => {
    let client: pg.Client;
    before(async () => {
      client = new pg.Client({ ...PG, user: role, password, database: db.name });
      await client.connect();
    });
    after(async () => {
      await client?.end();
    });

    const refusedSql = async (sql: string, message: RegExp) => {
      await assert.rejects(client.query(sql), (err: Error & { code?: string }) => {
        assert.equal(err.code, '42501', `${sql}: ${err.message}`); // insufficient_privilege
        assert.match(err.message, message);
        return true;
      });
    };

    it('refuses DROP TABLE: must be owner', async () => {
      await refusedSql('drop table public.audit_log', /must be owner of table audit_log/);
    });

    it('refuses TRUNCATE, CREATE TABLE and ALTER TABLE', async () => {
      await refusedSql('truncate public.audit_log', /permission denied for table audit_log/);
      await refusedSql(
        'create table public.intruder (id int)',
        /permission denied for schema public/,
      );
      await refusedSql(
        'alter table public.audit_log add column x int',
        /must be owner of table audit_log/,
      );
    });

    it("reads the load signals throttling needs: other roles' sessions and the WAL archive status", async () => {
      const { rows } = await client.query<{ hidden: number }>(
        `select count(*)::int as hidden from pg_catalog.pg_stat_activity
          where usename is distinct from current_user and backend_type = 'client backend' and state is null`,
      );
      assert.equal(rows[0]!.hidden, 0);
      await client.query('select count(*) from pg_catalog.pg_ls_archive_statusdir()');
    });
  });

  describe('the S3 policy refuses what the archiver never does (MinIO STS AssumeRole)', () => {
    it('refuses deleting an archived object, deleting the bucket, and writing or listing outside the prefix', async () => {
      const data = (await listAll(root, prefix)).find((o) => o.key.endsWith('.jsonl.gz'))!;
      await refused(
        restricted.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: data.key })),
        'DeleteObject of an archived object',
      );
      await refused(restricted.send(new DeleteBucketCommand({ Bucket: BUCKET })), 'DeleteBucket');
      await refused(
        restricted.send(
          new PutObjectCommand({ Bucket: BUCKET, Key: `elsewhere-${randomUUID()}`, Body: 'x' }),
        ),
        'PutObject outside the prefix',
      );
      await refused(
        restricted.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'elsewhere/' })),
        'ListObjectsV2 outside the prefix',
      );
      await refused(
        restricted.send(
          new PutBucketPolicyCommand({ Bucket: BUCKET, Policy: readFileSync(POLICY_FILE, 'utf8') }),
        ),
        'PutBucketPolicy',
      );
      assert.ok((await listAll(root, prefix)).some((o) => o.key === data.key));
    });

    it('allows the Object Lock calls of compliance on a locked bucket: retention on write, legal holds, the lock settings', async () => {
      const lockedPrefix = `least-privilege-${randomUUID()}/`;
      const s3 = s3With(await assumeRole(policyFor(LOCKED_BUCKET, lockedPrefix)));
      try {
        const bucket = new Bucket(s3, LOCKED_BUCKET);
        const key = `${lockedPrefix}db/public.t/year=2026/month=01/day=01/object.jsonl.gz`;
        const written = await bucket.uploadIfAbsent(
          key,
          Readable.from([Buffer.alloc(9 * 1024 * 1024, 0x61)]),
          {
            contentType: 'application/gzip',
            storageClass: 'STANDARD',
            signal: new AbortController().signal,
            retain: { mode: 'GOVERNANCE', days: 1 },
          },
        );
        assert.equal(written, 'created');
        assert.equal(await bucket.objectLockEnabled(), true);
        assert.equal(await bucket.versioning(), 'Enabled');
        await bucket.setLegalHold(key, true);
        const held = await bucket.protectionOf(key);
        assert.equal(held.legalHold, true);
        assert.equal(held.retention?.mode, 'GOVERNANCE');
        await bucket.setLegalHold(key, false);
        assert.equal((await bucket.protectionOf(key)).legalHold, false);
      } finally {
        s3.destroy();
      }
    });
  });
});
