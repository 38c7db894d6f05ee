import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { ConfigInput } from '../../src/config/schema';
import { createS3Client } from '../../src/store/client';
import { runCli } from '../helpers/cli';
import { testConfig, testConfigInput, writeConfigFile } from '../helpers/config';
import { createAuditTable, TestDatabase } from '../helpers/database';
import { BUCKET } from '../helpers/stack';

// `audit-archiver doctor` against the real PostgreSQL, MinIO and Temporal server.
describe('CLI: doctor (real services)', function () {
  this.timeout(60_000);
  let db: TestDatabase;
  const prefix = `doctor-${randomUUID()}/`;

  before(async () => {
    db = await TestDatabase.create();
    await createAuditTable(db, { rows: 5 });
  });
  after(() => db?.drop());

  async function doctor(edit: (config: ConfigInput) => void = () => undefined) {
    const config = testConfigInput({ database: db.name, prefix, overrides: edit });
    const result = await runCli(['doctor', '--config', writeConfigFile(config)]);
    const lines = result.stdout.trimEnd().split('\n');
    return { ...result, lines, failures: lines.filter((l) => l.startsWith('FAIL')) };
  }

  it('passes every check for a good table and exits 0', async () => {
    const { code, lines, failures, stderr } = await doctor();
    assert.equal(stderr, '');
    assert.deepEqual(failures, []);
    assert.equal(code, 0);
    for (const expected of [
      new RegExp(
        `^ok {4}database ${db.name} \\(postgres@127\\.0\\.0\\.1:5432/${db.name}\\): connected, PostgreSQL \\d+`,
      ),
      /^ok {4}table .* public\.audit_log timestamp_column: created_at \(timestamp with time zone\)$/,
      /^ok {4}table .* public\.audit_log primary_key: id \(unique, indexed\)$/,
      /^ok {4}table .* public\.audit_log privileges: SELECT and DELETE granted$/,
      /^ok {4}bucket s3:\/\/audit-archive\/doctor-.*: reachable; wrote and read back a probe object, and the store refused to overwrite it \(single and multipart\)$/,
      /^ok {4}temporal .* namespace default: server and namespace answer$/,
      /^ok {4}temporal search attributes: /,
    ]) {
      assert.ok(
        lines.some((l) => expected.test(l)),
        `no line matches ${expected}:\n${lines.join('\n')}`,
      );
    }
    assert.match(lines.at(-1)!, /^all \d+ checks passed$/);
  });

  it('leaves nothing behind in the bucket', async () => {
    await doctor();
    const s3 = createS3Client(testConfig({ database: db.name, prefix }).s3);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
    s3.destroy();
    assert.equal(listed.KeyCount, 0);
  });

  const failures: [string, (c: ConfigInput) => void, RegExp][] = [
    [
      'a missing table',
      (c) => (c.databases[0]!.tables[0]!.name = 'no_such_table'),
      /^FAIL {2}table \S+ public\.no_such_table: does not exist/,
    ],
    [
      'a wrong timestamp column',
      (c) => (c.databases[0]!.tables[0]!.timestamp_column = 'actor'),
      /^FAIL {2}table .* timestamp_column: column "actor" is text, expected timestamp/,
    ],
    [
      'an unreachable database (wrong port)',
      (c) => (c.databases[0]!.port = 1),
      /^FAIL {2}database .*: connection refused/,
    ],
    [
      'an unreachable bucket',
      (c) => (c.s3.endpoint = 'http://127.0.0.1:1'),
      /^FAIL {2}bucket .*: cannot reach the bucket: connection refused/,
    ],
    [
      'a bucket that does not exist',
      (c) => (c.s3.bucket = `no-such-bucket-${randomUUID().slice(0, 8)}`),
      /^FAIL {2}bucket .*: cannot reach the bucket: the bucket does not exist$/,
    ],
    [
      'a stopped Temporal server',
      (c) => (c.temporal!.address = '127.0.0.1:1'),
      /^FAIL {2}temporal 127\.0\.0\.1:1 namespace default: cannot connect/,
    ],
    [
      'an unknown Temporal namespace',
      (c) => (c.temporal!.namespace = 'no-such-namespace'),
      /^FAIL {2}temporal .* namespace no-such-namespace: .*not found/i,
    ],
  ];

  for (const [what, edit, expected] of failures) {
    it(`gives one clear FAIL line for ${what} and exits 1`, async () => {
      const { code, failures: lines, stdout } = await doctor(edit);
      assert.equal(code, 1);
      assert.equal(lines.length, 1, stdout);
      assert.match(lines[0]!, expected);
    });
  }
});
