import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createS3Client } from '../../src/store/client';
import { AuditTrail, recordHash, type AuditEntry } from '../../src/store/audit-trail';
import { Bucket } from '../../src/store/bucket';
import { auditHeadKey, auditRecordKey } from '../../src/store/layout';
import { readBytes } from '../helpers/bucket';
import { testConfig } from '../helpers/config';
import { BUCKET } from '../helpers/stack';

const entry = (event: string): AuditEntry => ({
  at: new Date().toISOString(),
  action: 'archive',
  event,
  actor: { worker: 'test', workflowId: 'w', runId: 'r' },
  table: { database: 'app', schema: 'public', table: 'audit_log' },
  details: { object: `${event}.jsonl.gz`, rowCount: 1 },
});

// Issue 12, the audit trail: a hash chain of write-once records in the real store. Writers
// that race never fork it or lose a record; editing, removing or reordering any record is
// named by `verify`.
describe('audit trail in the store (real MinIO)', function () {
  this.timeout(120_000);
  let s3: S3Client;
  const prefix = `audit-trail-${randomUUID()}/`;
  const put = (key: string, body: Buffer | string) =>
    s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));

  before(() => {
    s3 = createS3Client(testConfig({ database: 'none', prefix }).s3);
  });
  after(() => s3?.destroy());

  /** A writer of its own, as another worker process would be: its own idea of the head. */
  const writer = () => new AuditTrail(new Bucket(s3, BUCKET), prefix);

  it('keeps one unbroken chain when several writers append at once', async () => {
    const writers = [writer(), writer(), writer(), writer()];
    await Promise.all(
      writers.map(async (w, i) => {
        for (let n = 0; n < 8; n++) await w.append(entry(`w${i}-${n}`));
      }),
    );
    const records = await writer().read();
    assert.deepEqual(
      records.map((r) => r.seq),
      Array.from({ length: 32 }, (_, i) => i),
    );
    assert.deepEqual(
      records.map((r) => r.event).sort(),
      writers.flatMap((_, i) => Array.from({ length: 8 }, (__, n) => `w${i}-${n}`)).sort(),
      'every record written once',
    );
    assert.deepEqual(await writer().verify(), { records: 32, problems: [] });
  });

  it('names an edited record', async () => {
    const key = auditRecordKey(prefix, 5);
    const original = await readBytes(s3, key);
    const edited = original.toString('utf8').replace('"rowCount": 1', '"rowCount": 1000');
    assert.notEqual(edited, original.toString('utf8'));
    await put(key, edited);
    try {
      const { problems } = await writer().verify();
      assert.equal(problems[0]?.seq, 5);
      assert.match(problems[0].problem, /record 5 was edited: its content does not match its hash/);
    } finally {
      await put(key, original);
    }
    assert.deepEqual((await writer().verify()).problems, []);
  });

  it('names a record with a field added, which no schema would keep', async () => {
    const key = auditRecordKey(prefix, 6);
    const original = await readBytes(s3, key);
    const record = JSON.parse(original.toString('utf8')) as Record<string, unknown>;
    await put(key, JSON.stringify({ ...record, approvedBy: 'nobody' }));
    try {
      const { problems } = await writer().verify();
      assert.equal(problems[0]?.seq, 6);
      assert.match(problems[0].problem, /record 6 was edited/);
    } finally {
      await put(key, original);
    }
  });

  it('names a record edited with its hash recomputed, by the record after it', async () => {
    const key = auditRecordKey(prefix, 7);
    const original = await readBytes(s3, key);
    const record = JSON.parse(original.toString('utf8')) as { details: object; hash: string };
    record.details = { object: 'forged.jsonl.gz', rowCount: 1 };
    record.hash = recordHash(record);
    await put(key, JSON.stringify(record));
    try {
      const { problems } = await writer().verify();
      assert.equal(problems[0]?.seq, 8);
      assert.match(problems[0].problem, /record 8 does not follow record 7/);
    } finally {
      await put(key, original);
    }
  });

  it('names a removed record, and records removed from the end', async () => {
    const middle = auditRecordKey(prefix, 10);
    const last = auditRecordKey(prefix, 31);
    const kept = [await readBytes(s3, middle), await readBytes(s3, last)];
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: middle }));
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: last }));
    try {
      const { problems } = await writer().verify();
      assert.deepEqual(
        problems.map((p) => p.problem),
        ['record 10 is missing', 'records 31 to 31 are missing: the head pointer names record 31'],
      );
    } finally {
      await put(middle, kept[0]!);
      await put(last, kept[1]!);
    }
  });

  it('names records put in another order', async () => {
    const [a, b] = [auditRecordKey(prefix, 20), auditRecordKey(prefix, 21)];
    const [bodyA, bodyB] = [await readBytes(s3, a), await readBytes(s3, b)];
    await put(a, bodyB);
    await put(b, bodyA);
    try {
      const { problems } = await writer().verify();
      assert.equal(problems[0]?.seq, 20);
      assert.match(problems[0].problem, /record 20 holds record 21: moved or reordered/);
    } finally {
      await put(a, bodyA);
      await put(b, bodyB);
    }
    assert.deepEqual(await writer().verify(), { records: 32, problems: [] });
  });

  it('finds the end past a head pointer that lags behind', async () => {
    await put(
      auditHeadKey(prefix),
      JSON.stringify({
        format: 'audit-archiver/audit-head@1',
        seq: 3,
        hash: 'a'.repeat(64),
        at: 'x',
      }),
    );
    const record = await writer().append(entry('after-a-stale-head'));
    assert.equal(record.seq, 32);
    assert.deepEqual(await writer().verify(), { records: 33, problems: [] });
  });

  it('names a damaged head pointer, and appends past it', async () => {
    await put(auditHeadKey(prefix), '{"format": "audit-archiver/audit-head@1", "seq": ');
    const { problems } = await writer().verify();
    assert.equal(problems.length, 1);
    assert.match(problems[0]!.problem, /^the head pointer is damaged: .*not valid JSON/);
    const record = await writer().append(entry('after-a-damaged-head'));
    assert.equal(record.seq, 33);
    assert.deepEqual(await writer().verify(), { records: 34, problems: [] });
  });
});
