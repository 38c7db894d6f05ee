import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import { stringify } from 'yaml';
import { parseConfig, type Config } from '../../src/config';
import type { ConfigInput } from '../../src/config/schema';
import { archiveTableWorkflowId, type ArchiveTableOutcome } from '../../src/shared/archive-types';
import { innermostMessage } from '../../src/shared/failures';
import type { ValidateResult } from '../../src/shared/validate-types';
import { createS3Client } from '../../src/store/client';
import type { ArchiveTable, Restore, Validate } from '../../workflows';
import { AUDIT_ACTIONS } from '../../src/shared/audit-types';
import type { AuditRecord } from '../../src/store/documents';
import { auditRecordKey } from '../../src/store/layout';
import { PrivateMinio } from '../../scripts/chaos/servers';
import { testConfig, testConfigInput, writeConfigFile } from '../helpers/config';
import { TestDatabase } from '../helpers/database';
import { runMain } from '../helpers/in-process-cli';
import { BUCKET, KMS_KEY, LOCKED_BUCKET } from '../helpers/stack';
import { startTestWorker, uniqueTaskQueue, type TestWorker } from '../helpers/worker';
import { freePort } from '../helpers/worker-process';

const DAY_MS = 86_400_000;
/** The UTC day `days` days ago. */
const daysAgo = (days: number) => new Date(Date.now() - days * DAY_MS).toISOString().slice(0, 10);

/** Keys and what the store says of each object under a prefix of a bucket. */
async function heads(s3: S3Client, bucket: string, prefix: string) {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return Promise.all(
    (listed.Contents ?? []).map(async (o) => ({
      key: o.Key!,
      head: await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: o.Key! })),
    })),
  );
}

async function archive(worker: TestWorker, database: string): Promise<ArchiveTableOutcome> {
  const ref = { database, schema: 'public', table: 'audit_log' };
  return worker.client.workflow.execute<typeof ArchiveTable>('ArchiveTable', {
    taskQueue: worker.taskQueue,
    workflowId: `${archiveTableWorkflowId(ref)}-${randomUUID()}`,
    args: [ref],
  });
}

/** `year=YYYY/month=MM/day=DD/`: the folder of a day's objects. */
const dayFolder = (day: string) =>
  `/year=${day.slice(0, 4)}/month=${day.slice(5, 7)}/day=${day.slice(8)}/`;

/**
 * An audit table with `perDay` rows at noon of each of the last `days` UTC days, except the
 * day `retentionDays` ago, on whose side of the cutoff a row falls by the time of day.
 */
async function auditTable(
  db: TestDatabase,
  days: number,
  perDay: number,
  retentionDays: number,
): Promise<void> {
  await db.query(`create table audit_log (
    id bigint generated always as identity primary key,
    created_at timestamptz not null,
    actor text not null,
    payload jsonb)`);
  await db.query(
    `insert into audit_log (created_at, actor, payload)
     select date_trunc('day', now()) - d * interval '1 day' + interval '12 hours' + r * interval '1 second',
            'user' || r, jsonb_build_object('d', d, 'r', r)
       from generate_series(1, $1::int) d, generate_series(1, $2::int) r
      where d <> $3::int`,
    [days, perDay, retentionDays],
  );
}

const countRows = async (db: TestDatabase, where = 'true') =>
  Number(
    (await db.query<{ n: string }>(`select count(*) as n from audit_log where ${where}`))[0]!.n,
  );

// Issue 12: the compliance controls on the storage's own mechanisms, against the stack's MinIO
// (a KMS key, and a bucket with versioning and Object Lock), never a mock.
describe('Compliance: encryption, Object Lock retention and legal holds (real stack)', function () {
  this.timeout(300_000);
  let db: TestDatabase;
  let worker: TestWorker;
  let s3: S3Client;
  let config: Config;
  let input: ConfigInput;
  const prefix = `compliance-${randomUUID()}/`;
  const heldFirst = daysAgo(14);
  const heldLast = daysAgo(12);

  before(async () => {
    db = await TestDatabase.create();
    await auditTable(db, 20, 30, 7);
    input = testConfigInput({
      database: db.name,
      prefix,
      taskQueue: uniqueTaskQueue(),
      overrides: (c) => {
        c.s3.bucket = LOCKED_BUCKET;
        c.s3.encryption = { mode: 'SSE-KMS', kms_key_id: KMS_KEY };
        c.defaults = { retention_days: 7, batch_size: 25 };
        c.compliance = {
          classifications: {
            critical: {
              min_retention_days: 5,
              archive_retention_days: 1,
              require_encryption: true,
            },
          },
        };
        const table = c.databases[0]!.tables[0]!;
        table.classification = 'critical';
        table.legal_hold = {
          reason: 'litigation hold',
          since: heldFirst,
          until: heldLast,
          reference: 'LIT-42',
        };
      },
    });
    config = parseConfig(stringify(input), 'compliance.yaml', {});
    worker = await startTestWorker(config);
    s3 = createS3Client(config.s3);
  });

  after(async () => {
    await worker?.stop();
    s3?.destroy();
    await db?.drop();
  });

  it('keeps the rows of legally held days through a run, names the hold in the result, and writes every object encrypted and under retention', async () => {
    const heldWhere = `created_at >= '${heldFirst}T00:00:00Z' and created_at < '${heldLast}T00:00:00Z'::timestamptz + interval '1 day'`;
    const held = await countRows(db, heldWhere);
    assert.equal(held, 90, 'three held days of 30 rows');

    const outcome = await archive(worker, db.name);
    assert.equal(outcome.outcome, 'archived');
    assert.deepEqual(outcome.skipped.held, [
      {
        hold: 'config',
        reason: 'litigation hold (LIT-42)',
        days: { first: heldFirst, last: heldLast },
        rows: 90,
        objectsLocked: 0,
      },
    ]);
    assert.equal(await countRows(db, heldWhere), 90, 'every held row is still in the table');
    // Of the 19 days, 1 to 6 are inside retention; 8 to 20 old, 12 to 14 of them held.
    assert.equal(await countRows(db), 6 * 30 + 90);

    const objects = await heads(s3, LOCKED_BUCKET, prefix);
    const data = objects.filter((o) => o.key.endsWith('.jsonl.gz'));
    assert.equal(data.length, 10 * 2, 'ten archived days, two batches of 25 or fewer each');
    for (const { key, head } of objects) {
      assert.equal(head.ServerSideEncryption, 'aws:kms', `${key} is encrypted with SSE-KMS`);
    }
    for (const { key, head } of data) {
      assert.equal(head.ObjectLockMode, 'GOVERNANCE', `${key} has Object Lock retention`);
      assert.ok(head.ObjectLockRetainUntilDate! > new Date(Date.now() + DAY_MS / 2));
      for (const day of [heldFirst, daysAgo(13), heldLast])
        assert.ok(!key.includes(dayFolder(day)), `${key}: no object of a held day`);
    }
  });

  it('doctor checks the bucket settings each control needs', async () => {
    const ok = await runMain(['doctor', '-c', writeConfigFile(input)]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(
      ok.stdout,
      /^ok {4}encryption: SSE-KMS with key audit-archiver-key: a probe object written with it reads back encrypted$/m,
    );
    assert.match(
      ok.stdout,
      /^ok {4}object lock \(retention\): the bucket has Object Lock \(versioning Enabled\): public\.audit_log archived under GOVERNANCE 1 days retention$/m,
    );
    assert.match(
      ok.stdout,
      /^ok {4}object lock \(legal holds\): public\.audit_log under a legal hold/m,
    );

    // The same controls against the stack's other bucket, which has no Object Lock.
    const unlocked = await runMain([
      'doctor',
      '-c',
      writeConfigFile({ ...input, s3: { ...input.s3, bucket: BUCKET } }),
    ]);
    assert.equal(unlocked.code, 1, unlocked.stdout);
    const failures = unlocked.stdout.split('\n').filter((l) => l.startsWith('FAIL'));
    assert.deepEqual(failures, [
      'FAIL  object lock (retention): the bucket has no Object Lock, but public.audit_log ask for archive retention (archive_retention_days): create the bucket with Object Lock on (docs/compliance.md)',
    ]);
  });

  it('a hold placed at run time keeps new rows, locks the archived objects against deletion, and its release lifts the lock', async () => {
    const day = daysAgo(16); // archived by the first test
    const file = writeConfigFile(input);
    const placed = await runMain([
      'hold',
      'place',
      '-c',
      file,
      '-d',
      db.name,
      '-t',
      'audit_log',
      '--reason',
      'regulator request R-7',
      '--since',
      day,
      '--until',
      day,
      '--by',
      'compliance-officer',
    ]);
    assert.equal(placed.code, 0, placed.stderr);
    const id = /placed legal hold (legal-[0-9a-f]+)/.exec(placed.stdout)?.[1];
    assert.ok(id, placed.stdout);
    assert.match(
      placed.stdout,
      /2 archived objects of those days put under an Object Lock legal hold/,
    );

    const locked = (await heads(s3, LOCKED_BUCKET, prefix)).filter(
      (o) => o.key.includes(dayFolder(day)) && o.key.endsWith('.jsonl.gz'),
    );
    assert.equal(locked.length, 2);
    for (const { key, head } of locked) {
      assert.equal(head.ObjectLockLegalHoldStatus, 'ON', `${key} is under a legal hold`);
      await assert.rejects(
        s3.send(
          new DeleteObjectCommand({ Bucket: LOCKED_BUCKET, Key: key, VersionId: head.VersionId }),
        ),
        (err: Error) => /WORM|AccessDenied|locked|protected/i.test(`${err.name} ${err.message}`),
        'the store refuses to delete a version under a legal hold',
      );
    }

    // Rows of that day written since (a late import) are held too.
    await db.query(
      `insert into audit_log (created_at, actor)
       select ($1 || 'T13:00:00Z')::timestamptz, 'late' from generate_series(1, 5)`,
      [day],
    );
    const outcome = await archive(worker, db.name);
    assert.equal(outcome.outcome, 'archived');
    const byId = outcome.skipped.held?.find((h) => h.hold === id);
    assert.deepEqual(byId, {
      hold: id,
      reason: 'regulator request R-7',
      days: { first: day, last: day },
      rows: 5,
      objectsLocked: 2,
    });
    assert.equal(await countRows(db, `actor = 'late'`), 5);

    const listed = await runMain(['hold', 'list', '-c', file, '-d', db.name, '-t', 'audit_log']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /held {5}config \(legal, in the config file\)/);
    assert.match(
      listed.stdout,
      new RegExp(
        `held {5}${id} \\(legal\\): ${day} \\(regulator request R-7, by compliance-officer`,
      ),
    );

    const released = await runMain([
      'hold',
      'release',
      '-c',
      file,
      '-d',
      db.name,
      '-t',
      'audit_log',
      '--hold',
      id,
      '--reason',
      'request closed',
    ]);
    assert.equal(released.code, 0, released.stderr);
    assert.match(released.stdout, /Object Lock legal hold lifted from 2 archived objects/);
    for (const { key } of locked) {
      const head = await s3.send(new HeadObjectCommand({ Bucket: LOCKED_BUCKET, Key: key }));
      assert.equal(head.ObjectLockLegalHoldStatus, 'OFF', `${key}: legal hold lifted`);
    }
    const after = await archive(worker, db.name);
    assert.equal(after.outcome, 'archived');
    assert.equal(await countRows(db, `actor = 'late'`), 0, 'released: the late rows are archived');
  });
  it('audit verify passes on the real history of archive, restore, validate, hold and release, and names a record edited afterwards', async () => {
    const file = writeConfigFile(input);
    await db.query('create table audit_log_side (like audit_log including all)');
    const restored = await worker.client.workflow.execute<typeof Restore>('Restore', {
      taskQueue: worker.taskQueue,
      workflowId: `restore-${randomUUID()}`,
      args: [{ database: db.name, table: 'audit_log', targetTable: 'audit_log_side' }],
    });
    assert.equal(restored.outcome, 'restored');
    const validated = await runMain(['validate', '-c', file]);
    assert.equal(validated.code, 0, validated.stdout + validated.stderr);

    const verified = await runMain(['audit', 'verify', '-c', file]);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    const shown = await runMain(['audit', 'show', '-c', file, '--json']);
    assert.equal(shown.code, 0, shown.stderr);
    const { records } = JSON.parse(shown.stdout) as { records: AuditRecord[] };
    assert.match(
      verified.stdout,
      new RegExp(
        `^audit trail intact: ${records.length} records, each chained to the one before$`,
        'm',
      ),
    );
    const actions = new Set(records.map((r) => r.action));
    for (const action of AUDIT_ACTIONS.filter((a) => a !== 'schema-change'))
      assert.ok(actions.has(action), `a ${action} record`);
    const deletes = records.filter((r) => r.action === 'delete');
    assert.equal(
      deletes.reduce((n, r) => n + Number(r.details.deleted), 0),
      300 + 5,
      'the delete records count every row deleted',
    );
    const hold = records.find((r) => r.action === 'hold')!;
    assert.equal(hold.details.placedBy, 'compliance-officer');
    assert.equal(hold.table?.database, db.name);
    assert.match(hold.actor.workflowId, /^place-hold\//);

    const filtered = await runMain(['audit', 'show', '-c', file, '--action', 'hold', 'release']);
    assert.equal(filtered.code, 0, filtered.stderr);
    assert.deepEqual(
      filtered.stdout
        .split('\n')
        .filter((l) => /^\d+ /.test(l))
        .map((l) => l.split(/\s+/)[2]),
      ['hold', 'release'],
    );

    // Versioning keeps the old version; the trail is edited as a thief would, in place.
    const key = auditRecordKey(prefix, hold.seq);
    const original = await s3.send(new GetObjectCommand({ Bucket: LOCKED_BUCKET, Key: key }));
    const text = await original.Body!.transformToString();
    await s3.send(
      new PutObjectCommand({
        Bucket: LOCKED_BUCKET,
        Key: key,
        Body: text.replace('compliance-officer', 'somebody-else'),
        ServerSideEncryption: 'aws:kms',
        SSEKMSKeyId: KMS_KEY,
      }),
    );
    const broken = await runMain(['audit', 'verify', '-c', file]);
    assert.equal(broken.code, 1);
    assert.match(
      broken.stdout,
      new RegExp(`^audit trail broken: first problem at record ${hold.seq}$`, 'm'),
    );
    assert.match(broken.stdout, new RegExp(`record ${hold.seq} was edited`));
  });
});

describe('Compliance: a store that does not encrypt (a MinIO without a KMS key)', function () {
  this.timeout(180_000);
  let db: TestDatabase;
  let minio: PrivateMinio;
  let dir: string;
  let worker: TestWorker | undefined;

  before(async () => {
    db = await TestDatabase.create();
    await auditTable(db, 10, 10, 3);
    dir = mkdtempSync(path.join(tmpdir(), 'aa-plain-minio-'));
    minio = new PrivateMinio(dir, await freePort(), await freePort());
    await minio.start();
    await minio.createBucket('plain');
  });

  after(async () => {
    await worker?.stop();
    await minio?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    await db?.drop();
  });

  it('fails the run before any write or delete, saying why', async () => {
    const before = await countRows(db);
    const configInput = testConfigInput({
      database: db.name,
      prefix: 'plain/',
      taskQueue: uniqueTaskQueue(),
      overrides: (c) => {
        c.s3.endpoint = minio.endpoint;
        c.s3.bucket = 'plain';
        c.s3.encryption = { mode: 'SSE-S3' };
        c.defaults = { retention_days: 3, batch_size: 10 };
        c.databases[0]!.tables[0]!.require_encryption = true;
      },
    });
    const config = parseConfig(stringify(configInput), 'plain.yaml', {});
    worker = await startTestWorker(config);
    const failure = await archive(worker, db.name).then(
      () => assert.fail('the run must fail'),
      (err: unknown) => err,
    );
    assert.ok(failure instanceof WorkflowFailedError);
    const messages: string[] = [];
    for (let e: unknown = failure; e instanceof Error; e = e.cause) messages.push(e.message);
    assert.ok(
      messages.some((m) =>
        /the store refused to encrypt a probe object with AES256: .*KMS is not configured.*nothing was archived/.test(
          m,
        ),
      ),
      messages.join('\n'),
    );
    assert.match(innermostMessage(failure), /KMS is not configured/);
    assert.equal(await countRows(db), before, 'no row deleted');
    const s3 = minio.client();
    try {
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'plain' }));
      assert.deepEqual(listed.Contents ?? [], [], 'nothing written to the bucket');
    } finally {
      s3.destroy();
    }
    const doctor = await runMain(['doctor', '-c', writeConfigFile(configInput)]);
    assert.equal(doctor.code, 1);
    assert.match(
      doctor.stdout,
      /^FAIL {2}bucket s3:\/\/plain\/plain\/ .*: cannot write a probe object: Server side encryption specified but KMS is not configured/m,
    );
  });
});

describe('Compliance: validate reports objects of an encryption-requiring table that are not encrypted', function () {
  this.timeout(180_000);
  let db: TestDatabase;
  let workers: TestWorker[] = [];
  const prefix = `compliance-validate-${randomUUID()}/`;

  before(async () => {
    db = await TestDatabase.create();
    await auditTable(db, 6, 10, 3);
  });

  after(async () => {
    for (const w of workers) await w.stop();
    workers = [];
    await db?.drop();
  });

  it('names each unencrypted data object', async () => {
    const base = (c: ConfigInput) => {
      c.defaults = { retention_days: 3, batch_size: 100 };
    };
    const plain = testConfig({
      database: db.name,
      prefix,
      taskQueue: uniqueTaskQueue(),
      overrides: base,
    });
    const archiver = await startTestWorker(plain);
    workers.push(archiver);
    assert.equal((await archive(archiver, db.name)).outcome, 'archived');

    const strict = testConfig({
      database: db.name,
      prefix,
      taskQueue: uniqueTaskQueue(),
      overrides: (c) => {
        base(c);
        c.s3.encryption = { mode: 'SSE-S3' };
        c.databases[0]!.tables[0]!.require_encryption = true;
      },
    });
    const validator = await startTestWorker(strict);
    workers.push(validator);
    const result: ValidateResult = await validator.client.workflow.execute<typeof Validate>(
      'Validate',
      { taskQueue: validator.taskQueue, workflowId: `validate-${randomUUID()}`, args: [{}] },
    );
    const problems = result.tables.flatMap((t) => t.problems);
    assert.equal(problems.length, 3, JSON.stringify(problems));
    for (const p of problems) {
      assert.match(p.key, /\.jsonl\.gz$/);
      assert.match(p.problem, /is not encrypted .* but the table requires encryption/);
    }
  });
});

describe('Compliance: schema drift policy block', function () {
  this.timeout(180_000);
  let db: TestDatabase;
  let worker: TestWorker;
  const prefix = `compliance-drift-${randomUUID()}/`;
  let input: ConfigInput;

  before(async () => {
    db = await TestDatabase.create();
    await auditTable(db, 8, 10, 3);
    input = testConfigInput({
      database: db.name,
      prefix,
      taskQueue: uniqueTaskQueue(),
      overrides: (c) => {
        c.defaults = { retention_days: 3, batch_size: 100, schema_drift: 'block' };
      },
    });
    worker = await startTestWorker(parseConfig(stringify(input), 'drift.yaml', {}));
  });

  after(async () => {
    await worker?.stop();
    await db?.drop();
  });

  it('stops a run before any export when the schema changed, naming the change, until snapshot-schema accepts it', async () => {
    assert.equal((await archive(worker, db.name)).outcome, 'archived');
    await db.query('alter table audit_log add column note text');
    await db.query(
      `insert into audit_log (created_at, actor, note) values (now() - interval '5 days', 'late', 'x')`,
    );
    const failure = await archive(worker, db.name).then(
      () => assert.fail('the run must stop'),
      (err: unknown) => err,
    );
    assert.ok(failure instanceof WorkflowFailedError);
    assert.match(
      innermostMessage(failure),
      /public\.audit_log: the schema changed since the last snapshot \(added note \(text\)\); schema_drift is block, so nothing was archived/,
    );
    assert.equal(await countRows(db, `actor = 'late'`), 1, 'nothing archived');

    const file = writeConfigFile(input);
    const accepted = await runMain(['snapshot-schema', '-c', file, '-t', 'audit_log']);
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.equal((await archive(worker, db.name)).outcome, 'archived');
    assert.equal(await countRows(db, `actor = 'late'`), 0, 'archived once accepted');

    const shown = await runMain([
      'audit',
      'show',
      '-c',
      file,
      '--action',
      'schema-change',
      '--json',
    ]);
    const { records } = JSON.parse(shown.stdout) as { records: AuditRecord[] };
    assert.deepEqual(
      records.map((r) => [r.details.blocked, r.details.summary]),
      [
        [true, 'added note (text)'],
        [false, 'added note (text)'],
      ],
    );
  });
});

describe('Compliance: an https S3 endpoint behind a private CA (s3.ca_file)', function () {
  this.timeout(120_000);
  let dir: string;
  let minio: PrivateMinio | undefined;
  let endpoint: string;
  let caFile: string;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'aa-tls-minio-'));
    const certs = path.join(dir, 'certs');
    mkdirSync(certs);
    caFile = path.join(dir, 'ca.crt');
    // A CA of the test's own, and a server certificate it signs for 127.0.0.1.
    const ssl = (args: string) =>
      execFileSync('openssl', args.split(' '), { cwd: dir, stdio: 'pipe' });
    ssl('req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=test-CA');
    ssl(
      'req -newkey rsa:2048 -nodes -keyout certs/private.key -out server.csr -subj /CN=127.0.0.1',
    );
    writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    ssl(
      'x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out certs/public.crt -days 2 -extfile san.ext',
    );
    minio = new PrivateMinio(dir, await freePort(), await freePort(), {
      certsDir: certs,
      ca: readFileSync(caFile),
    });
    await minio.start();
    endpoint = minio.endpoint;
    await minio.createBucket('tls');
  });

  after(async () => {
    await minio?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('is reached with the CA bundle, and refused, naming the certificate, without it', async () => {
    const db = await TestDatabase.create();
    try {
      await auditTable(db, 4, 2, 2);
      const config = (ca: string | null) =>
        writeConfigFile(
          testConfigInput({
            database: db.name,
            prefix: 'tls/',
            overrides: (c) => {
              c.s3.endpoint = endpoint;
              c.s3.bucket = 'tls';
              c.s3.ca_file = ca;
            },
          }),
        );
      const trusted = await runMain(['doctor', '-c', config(caFile)]);
      assert.match(
        trusted.stdout,
        /^ok {4}bucket s3:\/\/tls\/tls\/ \(https:\/\/127\.0\.0\.1:\d+\): reachable/m,
      );
      const untrusted = await runMain(['doctor', '-c', config(null)]);
      assert.equal(untrusted.code, 1);
      assert.match(
        untrusted.stdout,
        /^FAIL {2}bucket s3:\/\/tls\/tls\/ .*(self[- ]signed|certificate|issuer)/im,
      );
    } finally {
      await db.drop();
    }
  });
});
