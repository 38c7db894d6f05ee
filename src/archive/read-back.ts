import { createHash } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { VerificationError } from '../shared/errors';
import { LineTransform } from './lines';
import type { ObjectManifest } from './manifests';
import { HashingPassThrough } from './streams';

export interface ReadBackRow {
  /** The line's bytes as stored (without the newline). */
  line: Buffer;
  /** The archive key column's value, as text. */
  key: string;
}

/**
 * Reads a data object back from the store, never from the exporter's memory or disk
 * (CONTRACT §2.1), and checks it against its manifest: SHA-256 of the stored bytes, that it
 * decompresses, that every line is a JSON object holding the key column, the row count and
 * the first and last key. `onRow` sees each row as stored. Throws VerificationError naming
 * the object and what is wrong.
 */
export interface ReadBackOptions {
  signal: AbortSignal;
  /** Sees each row as stored. */
  onRow?: (row: ReadBackRow) => void;
  /**
   * Receives every row as it is read, as the bytes `toSink` makes of it (default: the stored
   * line and a newline), e.g. a COPY FROM stream. The checks that need the whole object run
   * after the sink has taken the last row, so a caller writing to a database must keep that
   * work uncommitted until this resolves.
   */
  sink?: Writable;
  toSink?: (line: Buffer, row: Record<string, unknown>) => string | Buffer;
}

export async function readBackVerified(
  s3: S3Client,
  bucket: string,
  manifest: ObjectManifest,
  options: ReadBackOptions,
): Promise<void> {
  const { signal, onRow = () => undefined, sink, toSink } = options;
  const where = `s3://${bucket}/${manifest.object}`;
  const fail = (problem: string): never => {
    throw new VerificationError(`${where}: ${problem}`, { object: manifest.object });
  };
  let out;
  try {
    out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: manifest.object }), {
      abortSignal: signal,
    });
  } catch (err) {
    if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) {
      fail('the data object is missing');
    }
    throw err;
  }
  const body = out.Body as Readable | undefined;
  if (!body) fail('the store returned no body');

  let rowCount = 0;
  let firstKey: string | undefined;
  let lastKey: string | undefined;
  const keyColumn = manifest.primaryKey.column;
  const hasher = new HashingPassThrough();
  const rows = new LineTransform(
    (line) => {
      rowCount++;
      let row: unknown;
      try {
        row = JSON.parse(line.toString('utf8'));
      } catch {
        fail(`line ${rowCount} is not valid JSON`);
      }
      const key = (row as Record<string, unknown> | null)?.[keyColumn];
      if (typeof key !== 'string') fail(`line ${rowCount} has no "${keyColumn}" value`);
      firstKey ??= key as string;
      lastKey = key as string;
      onRow({ line, key: key as string });
      if (!sink) return undefined;
      return toSink ? Buffer.from(toSink(line, row as Record<string, unknown>)) : line;
    },
    { terminate: !toSink },
  );
  try {
    if (sink) await pipeline(body as Readable, hasher, createGunzip(), rows, sink, { signal });
    else await pipeline(body as Readable, hasher, createGunzip(), rows, { signal });
  } catch (err) {
    if (err instanceof VerificationError) throw err;
    if ((err as { code?: string }).code?.startsWith('Z_'))
      fail(`does not decompress (${(err as Error).message})`);
    throw err;
  }
  const sha256 = hasher.digest();
  if (sha256 !== manifest.sha256)
    fail(`SHA-256 ${sha256} differs from the manifest's ${manifest.sha256}`);
  if (hasher.bytes !== manifest.bytes)
    fail(`${hasher.bytes} bytes, the manifest says ${manifest.bytes}`);
  if (rowCount !== manifest.rowCount)
    fail(`${rowCount} rows, the manifest says ${manifest.rowCount}`);
  if (firstKey !== manifest.primaryKey.first || lastKey !== manifest.primaryKey.last) {
    fail(
      `keys ${firstKey}..${lastKey} differ from the manifest's ${manifest.primaryKey.first}..${manifest.primaryKey.last}`,
    );
  }
}

/** md5 of a stored line: the fingerprint PostgreSQL recomputes as md5(row json) at delete time. */
export function lineFingerprint(line: Buffer): string {
  return createHash('md5').update(line).digest('hex');
}
