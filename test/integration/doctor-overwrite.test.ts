import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AbortMultipartUploadCommand, type S3Client } from '@aws-sdk/client-s3';
import { createS3Client } from '../../src/store/client';
import { listAll } from '../helpers/bucket';
import { runCli } from '../helpers/cli';
import { testConfig, testConfigInput, writeConfigFile } from '../helpers/config';
import { createAuditTable, TestDatabase } from '../helpers/database';
import { BUCKET, MINIO_ENDPOINT } from '../helpers/stack';

/**
 * An S3 store that does not honour `If-None-Match: *`, built as a proxy in front of the real
 * MinIO: every request goes through unchanged (its SigV4 signature covers the Host header,
 * which it keeps), except a conditional write to a key that already exists, which a store
 * ignoring the header would carry out, replacing the object. The proxy answers it with
 * success itself (it cannot pass it on without the header: the header is signed):
 * - 'single': a PutObject;
 * - 'multipart': a CompleteMultipartUpload (the parts were uploaded to MinIO; the test aborts
 *   that upload afterwards).
 */
class StoreIgnoringIfNoneMatch {
  /** Paths (/bucket/key) this store has written. */
  private readonly existing = new Set<string>();
  /** Conditional writes it answered as if it had overwritten the key. */
  readonly overwritten: { method: string; path: string; uploadId: string | null }[] = [];
  private readonly server: http.Server;
  private readonly upstream = new URL(MINIO_ENDPOINT);

  constructor(private readonly ignoresOn: 'single' | 'multipart') {
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://store');
    const path = decodeURIComponent(url.pathname);
    const uploadId = url.searchParams.get('uploadId');
    const singlePut = req.method === 'PUT' && !uploadId;
    const completion = req.method === 'POST' && uploadId !== null;
    const ignored = this.ignoresOn === 'single' ? singlePut : completion;
    if (ignored && req.headers['if-none-match'] !== undefined && this.existing.has(path)) {
      this.overwritten.push({ method: req.method!, path, uploadId });
      req.resume();
      req.on('end', () => this.pretendWritten(res, path, completion));
      return;
    }
    const headers = { ...req.headers };
    // Not signed; the proxy passes the body on at once.
    delete headers.expect;
    const forwarded = http.request(
      {
        host: this.upstream.hostname,
        port: this.upstream.port,
        method: req.method,
        path: req.url,
        headers,
      },
      (answer) => {
        const status = answer.statusCode ?? 502;
        if (status >= 200 && status < 300 && (singlePut || completion)) this.existing.add(path);
        res.writeHead(status, answer.headers);
        answer.pipe(res);
      },
    );
    forwarded.on('error', () => res.destroy());
    req.pipe(forwarded);
  }

  private pretendWritten(res: http.ServerResponse, path: string, completion: boolean): void {
    const etag = `"${createHash('md5').update(randomUUID()).digest('hex')}${completion ? '-2' : ''}"`;
    if (!completion) {
      res.writeHead(200, { ETag: etag, 'Content-Length': '0' });
      res.end();
      return;
    }
    const [, bucket, ...key] = path.split('/');
    const body =
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
      '<CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
      `<Location>${MINIO_ENDPOINT}${path}</Location><Bucket>${bucket}</Bucket>` +
      `<Key>${key.join('/')}</Key><ETag>${etag.replace(/"/g, '&quot;')}</ETag>` +
      '</CompleteMultipartUploadResult>';
    res.writeHead(200, {
      'Content-Type': 'application/xml',
      'Content-Length': String(Buffer.byteLength(body)),
    });
    res.end(body);
  }
}

// Guarantee 3 (docs/architecture.md), issue 10 item 9: every never-overwrite rests on the store refusing
// a conditional write to a key that exists; the doctor proves that it does, single and
// multipart, and fails the bucket check, naming what went wrong, on a store that does not.
describe('CLI: doctor against a store that ignores If-None-Match (real MinIO behind a proxy)', function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let s3: S3Client;

  before(async () => {
    db = await TestDatabase.create();
    await createAuditTable(db, { rows: 5 });
    s3 = createS3Client(testConfig({ database: db.name, prefix: 'unused/' }).s3);
  });

  after(async () => {
    s3?.destroy();
    await db?.drop();
  });

  async function doctorThrough(store: StoreIgnoringIfNoneMatch, prefix: string) {
    const endpoint = await store.start();
    try {
      const config = testConfigInput({
        database: db.name,
        prefix,
        overrides: (c) => {
          c.s3.endpoint = endpoint;
        },
      });
      const result = await runCli(['doctor', '--config', writeConfigFile(config)], {}, 45_000);
      const lines = result.stdout.trimEnd().split('\n');
      return { ...result, endpoint, failures: lines.filter((l) => l.startsWith('FAIL')) };
    } finally {
      await store.stop();
    }
  }

  /** The bucket line the doctor must print for this prefix and endpoint, up to the detail. */
  const bucketLine = (prefix: string, endpoint: string) =>
    `FAIL  bucket s3://${BUCKET}/${prefix} (${endpoint}): `;

  it('fails the bucket check, naming If-None-Match, when the store overwrites an object on a conditional PUT, and leaves no probe behind', async () => {
    const prefix = `doctor-overwrite-${randomUUID()}/`;
    const store = new StoreIgnoringIfNoneMatch('single');
    const { code, failures, endpoint, stdout, stderr } = await doctorThrough(store, prefix);

    assert.equal(code, 1, stdout + stderr);
    assert.deepEqual(failures, [
      `${bucketLine(prefix, endpoint)}the store does not honour If-None-Match: it replaced the probe object on a conditional write; the archive relies on that refusal never to overwrite an object`,
    ]);
    assert.equal(store.overwritten.length, 1, 'the doctor wrote its probe twice, conditionally');
    assert.deepEqual(await listAll(s3, prefix), [], 'the probe was removed');
  });

  it('fails the bucket check when the store completes a multipart upload over an object despite If-None-Match', async () => {
    const prefix = `doctor-overwrite-${randomUUID()}/`;
    const store = new StoreIgnoringIfNoneMatch('multipart');
    const { code, failures, endpoint, stdout, stderr } = await doctorThrough(store, prefix);
    // The upload the store pretended to complete is still open in MinIO: end it.
    for (const { path, uploadId } of store.overwritten) {
      const key = path.slice(`/${BUCKET}/`.length);
      await s3.send(
        new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId! }),
      );
    }

    assert.equal(code, 1, stdout + stderr);
    assert.deepEqual(failures, [
      `${bucketLine(prefix, endpoint)}the store does not honour If-None-Match on multipart uploads: it completed one over the probe object; the archive relies on that refusal never to overwrite an object`,
    ]);
    assert.equal(store.overwritten.length, 1);
    assert.equal(store.overwritten[0]!.method, 'POST');
    assert.deepEqual(await listAll(s3, prefix), [], 'the probes were removed');
  });
});
