import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { S3Client, StorageClass } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { PoolClient } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { LineTransform } from './lines';
import { HashingPassThrough } from './streams';
import { FIELD_SEPARATOR } from './table-sql';

export interface ExportStats {
  rowCount: number;
  firstKey: string;
  lastKey: string;
  minTimestamp: string;
  maxTimestamp: string;
  maxTimestampMicros: string;
  sha256: string;
  bytes: number;
}

export interface StreamBatchOptions {
  client: PoolClient;
  copySql: string;
  s3: S3Client;
  bucket: string;
  key: string;
  storageClass: StorageClass;
  signal: AbortSignal;
  /** Called every `progressEvery` rows, e.g. to heartbeat. */
  onProgress: (rows: number) => void;
  progressEvery?: number;
}

// Multipart upload in 8 MiB parts, at most two in flight: with the stream buffers this bounds
// the export's memory to about 20 MiB, whatever the batch size.
const PART_SIZE = 8 * 1024 * 1024;
const PARTS_IN_FLIGHT = 2;

/**
 * Streams one batch from COPY through gzip into the store (CONTRACT: row data never passes
 * through Temporal), computing the manifest's facts on the way: row count, key range,
 * timestamp range, SHA-256 and size of the stored bytes. The caller owns the client and must
 * discard it (release(err)) if this throws, since the COPY may be half-read.
 */
export async function streamBatchToStore(options: StreamBatchOptions): Promise<ExportStats> {
  const progressEvery = options.progressEvery ?? 5_000;
  let rowCount = 0;
  let firstKey = '';
  let lastKey = '';
  let min: { micros: bigint; text: string } | undefined;
  let max: { micros: bigint; text: string } | undefined;

  const rows = new LineTransform(
    (line) => {
      const a = line.indexOf(FIELD_SEPARATOR);
      const b = line.indexOf(FIELD_SEPARATOR, a + 1);
      const c = line.indexOf(FIELD_SEPARATOR, b + 1);
      if (a < 0 || b < 0 || c < 0) throw new Error('COPY produced a line without its four fields');
      const key = JSON.parse(line.toString('utf8', 0, a)) as string;
      const micros = BigInt(line.toString('latin1', a + 1, b));
      if (rowCount === 0) firstKey = key;
      lastKey = key;
      if (!min || micros < min.micros)
        min = { micros, text: JSON.parse(line.toString('utf8', b + 1, c)) as string };
      if (!max || micros > max.micros)
        max = { micros, text: JSON.parse(line.toString('utf8', b + 1, c)) as string };
      rowCount++;
      if (rowCount % progressEvery === 0) options.onProgress(rowCount);
      return line.subarray(c + 1);
    },
    { terminate: true },
  );
  const hasher = new HashingPassThrough();
  const source = options.client.query(copyTo(options.copySql));

  const upload = new Upload({
    client: options.s3,
    params: {
      Bucket: options.bucket,
      Key: options.key,
      Body: hasher,
      ContentType: 'application/gzip',
      StorageClass: options.storageClass,
      // Never replaces an object: a stalled earlier attempt that wakes up late cannot
      // overwrite what a later attempt wrote and a manifest refers to (CONTRACT §4).
      IfNoneMatch: '*',
    },
    partSize: PART_SIZE,
    queueSize: PARTS_IN_FLIGHT,
    leavePartsOnError: false,
  });
  const abort = () => void upload.abort().catch(() => undefined);
  options.signal.addEventListener('abort', abort, { once: true });
  try {
    await Promise.all([
      pipeline(source, rows, createGzip({ level: 6 }), hasher, { signal: options.signal }),
      upload.done(),
    ]);
  } catch (err) {
    // Whichever side failed first, stop the other: no half-read COPY, no orphaned upload.
    source.destroy();
    hasher.destroy();
    await upload.abort().catch(() => undefined);
    throw err;
  } finally {
    options.signal.removeEventListener('abort', abort);
  }
  if (!min || !max) throw new Error('the batch query returned no rows');
  return {
    rowCount,
    firstKey,
    lastKey,
    minTimestamp: min.text,
    maxTimestamp: max.text,
    maxTimestampMicros: max.micros.toString(),
    sha256: hasher.digest(),
    bytes: hasher.bytes,
  };
}
