import assert from 'node:assert/strict';
import type { S3Client } from '@aws-sdk/client-s3';
import { legalHoldsInForce } from '../../src/archive/legal-holds';
import { parseConfig, selectTables } from '../../src/config';
import { NotEncryptedError } from '../../src/shared/errors';
import { Bucket, encryptionProblem } from '../../src/store/bucket';
import type { Hold } from '../../src/store/documents';

const config = (extra: string) =>
  parseConfig(
    `
version: "2.0"
s3: { bucket: audit, encryption: { mode: SSE-KMS, kms_key_id: archive-key } }
compliance:
  object_lock_mode: COMPLIANCE
  classifications:
    critical: { min_retention_days: 365, archive_retention_days: 2555, require_encryption: true }
    internal: { max_retention_days: 30 }
databases:
  - name: app
    tables:
${extra}
`,
    'compliance.yaml',
    {},
  );

describe('compliance settings of a table', () => {
  it('come from its classification, with the table able to override encryption', () => {
    const [critical, internal, plain] = selectTables(
      config(`      - { name: a, timestamp_column: t, primary_key: id, classification: critical, retention_days: 400 }
      - { name: b, timestamp_column: t, primary_key: id, classification: internal, retention_days: 30, require_encryption: true }
      - { name: c, timestamp_column: t, primary_key: id }`),
    );
    assert.deepEqual(
      [critical!.classification, critical!.requireEncryption, critical!.objectLock],
      ['critical', true, { days: 2555, mode: 'COMPLIANCE' }],
    );
    assert.deepEqual(
      [internal!.classification, internal!.requireEncryption, internal!.objectLock],
      ['internal', true, null],
    );
    assert.deepEqual(
      [plain!.classification, plain!.requireEncryption, plain!.objectLock],
      [null, false, null],
    );
  });
});

describe('legal holds in force', () => {
  const hold = (over: Partial<Hold>): Hold => ({
    format: 'audit-archiver/hold@1',
    id: 'h1',
    reason: 'restored',
    days: [{ first: '2024-01-01', last: '2024-01-31' }],
    workflowId: 'w',
    runId: 'r',
    createdAt: '2024-02-01T00:00:00Z',
    ...over,
  });

  it("are the config's and the bucket's legal ones, never a restore's, up to the cutoff's day", () => {
    const holds = legalHoldsInForce(
      { reason: 'case', since: '2023-06-01', reference: 'C-1' },
      [
        hold({}),
        hold({
          id: 'legal-1',
          kind: 'legal',
          reason: 'request',
          days: [{ first: '2024-03-01', last: '9999-12-31' }],
        }),
        hold({
          id: 'legal-2',
          kind: 'legal',
          reason: 'later',
          days: [{ first: '2025-01-01', last: '2025-01-02' }],
        }),
      ],
      '2024-06-15T10:00:00.000Z',
    );
    assert.deepEqual(holds, [
      { id: 'config', reason: 'case (C-1)', days: { first: '2023-06-01', last: '2024-06-15' } },
      { id: 'legal-1', reason: 'request', days: { first: '2024-03-01', last: '2024-06-15' } },
    ]);
  });
});

describe('encryption of a write, as the store answers it', () => {
  const kms = { kind: 'aws:kms', kmsKeyId: 'archive-key' } as const;

  it('names what is wrong with an answer, or nothing when it is as asked', () => {
    assert.match(encryptionProblem(kms, {})!, /reports no server-side encryption/);
    assert.match(
      encryptionProblem(kms, { ServerSideEncryption: 'AES256' })!,
      /reports AES256, not aws:kms/,
    );
    assert.match(
      encryptionProblem(kms, { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'other-key' })!,
      /names KMS key other-key, not archive-key/,
    );
    assert.equal(
      encryptionProblem(kms, {
        ServerSideEncryption: 'aws:kms',
        SSEKMSKeyId: 'arn:aws:kms:eu-west-1:111122223333:key/archive-key',
      }),
      undefined,
    );
  });

  // A store that takes the encryption header and ignores it cannot be made of MinIO, which
  // either encrypts or refuses: its answer is stood in for here.
  it('fails a write the store answered without the encryption asked for', async () => {
    const answers: Record<string, unknown>[] = [{}, { ServerSideEncryption: 'aws:kms' }];
    const sent: Record<string, unknown>[] = [];
    const s3 = {
      send: (command: { input: Record<string, unknown> }) => {
        sent.push(command.input);
        return Promise.resolve(answers.shift());
      },
    } as unknown as S3Client;
    const bucket = new Bucket(s3, 'audit', kms);
    await assert.rejects(
      bucket.putIfAbsent('a/b.json', '{}', { contentType: 'application/json' }),
      (err: unknown) =>
        err instanceof NotEncryptedError &&
        /s3:\/\/audit\/a\/b\.json: the store did not encrypt this write: its answer reports no server-side encryption/.test(
          err.message,
        ),
    );
    assert.equal(
      await bucket.putIfAbsent('a/c.json', '{}', { contentType: 'application/json' }),
      'created',
    );
    assert.deepEqual(
      sent.map((s) => [s.ServerSideEncryption, s.SSEKMSKeyId, s.IfNoneMatch]),
      [
        ['aws:kms', 'archive-key', '*'],
        ['aws:kms', 'archive-key', '*'],
      ],
    );
  });
});
