import { createHash } from 'node:crypto';
import { Transform, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { VerificationError } from '../shared/errors';
import type { ObjectManifest } from '../store/documents';
import type { TableArchive } from '../store/archive-store';
import { LineTransform } from './lines';
import { HashingPassThrough } from './streams';

export interface ReadBackRow {
  /** The line's bytes as stored (without the newline). */
  line: Buffer;
  /** The archive key column's value, as text. */
  key: string;
  /** The line parsed: column name to text form or null. */
  row: Record<string, unknown>;
}

/**
 * How much a read-back may take in before it stops: a damaged object (or a gzip bomb, or a
 * line without end) is one VerificationError, never a worker out of memory or a read that
 * runs for hours on every retry.
 */
export interface ReadLimits {
  /** Stored (compressed) bytes. */
  bytes: number;
  /** Decompressed bytes. */
  uncompressedBytes: number;
  /** Bytes of one line. */
  maxLineBytes: number;
}

/**
 * Limits for an object no manifest describes yet (one an earlier attempt stored and the
 * export adopts): far above any batch the archiver writes, far below what would hurt.
 */
export const UNKNOWN_OBJECT_LIMITS: ReadLimits = {
  bytes: 16 * 1024 ** 3,
  uncompressedBytes: 64 * 1024 ** 3,
  maxLineBytes: 256 * 1024 ** 2,
};

export interface StoredObjectFacts {
  /** The server-side encryption the store reported when it returned the object, or null. */
  encryption: string | null;
  sha256: string;
  bytes: number;
  uncompressedBytes: number;
  maxLineBytes: number;
  rowCount: number;
}

export interface ReadObjectOptions {
  signal: AbortSignal;
  keyColumn: string;
  limits: ReadLimits;
  /** Sees each row as stored, in order. */
  onRow?: (row: ReadBackRow) => void;
  /**
   * Receives each row as the bytes `toSink` makes of it (nothing when it returns undefined),
   * e.g. a COPY FROM stream. The checks that need the whole object run after the sink has
   * taken the last row, so a caller writing to a database keeps that work uncommitted until
   * the read-back resolves.
   */
  sink?: Writable;
  toSink?: (row: ReadBackRow) => string | Buffer | undefined;
}

/**
 * Reads a data object as stored, never from the exporter's memory or disk: checks that it
 * decompresses and that every line is a JSON object holding the key column as text, within
 * `limits`, and returns what it found. Throws VerificationError naming the object and the
 * line; a store that does not answer is thrown as it is (retried).
 */
export async function readStoredObject(
  archive: TableArchive,
  object: string,
  options: ReadObjectOptions,
): Promise<StoredObjectFacts> {
  try {
    return await readLines(archive, object, options);
  } catch (err) {
    // A sink that never saw the pipeline (the object is missing, or larger than stated) must
    // still be ended with the error: a COPY FROM left open would hold its session forever.
    const { sink } = options;
    if (sink && !sink.destroyed) {
      sink.once('error', () => undefined); // the error is thrown below; the sink only echoes it
      sink.destroy(err as Error);
    }
    throw err;
  }
}

async function readLines(
  archive: TableArchive,
  object: string,
  options: ReadObjectOptions,
): Promise<StoredObjectFacts> {
  const { signal, keyColumn, limits, onRow, sink, toSink } = options;
  const fail = (problem: string): never => {
    throw new VerificationError(`${archive.where(object)}: ${problem}`, { object });
  };
  const stored = await archive.openData(object, signal);
  if (stored.length > limits.bytes) {
    // Not read: let go of the response, or its connection stays taken (the client's pool
    // runs dry after a few dozen) and errors later with no one listening.
    stored.body.destroy();
    fail(`${stored.length} bytes stored, at most ${limits.bytes} expected`);
  }

  let rowCount = 0;
  let maxLineBytes = 0;
  const hasher = new HashingPassThrough(limits.bytes, (bytes) =>
    fail(`more than the ${limits.bytes} bytes expected (${bytes} read)`),
  );
  const inflated = new ByteCeiling(limits.uncompressedBytes, (bytes) =>
    fail(`decompresses to more than the ${limits.uncompressedBytes} bytes expected (${bytes})`),
  );
  const lines = new LineTransform(
    (line) => {
      rowCount++;
      if (line.length > maxLineBytes) maxLineBytes = line.length;
      // Decoded strictly: a lenient decode turns damaged bytes into U+FFFD and the line parses.
      let text = '';
      try {
        text = utf8.decode(line);
      } catch {
        fail(`line ${rowCount} is not valid UTF-8`);
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        fail(`line ${rowCount} is not valid JSON`);
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
        fail(`line ${rowCount} is not a JSON object`);
      const row = parsed as Record<string, unknown>;
      const key = row[keyColumn];
      if (typeof key !== 'string') fail(`line ${rowCount} has no "${keyColumn}" value`);
      const read: ReadBackRow = { line, key: key as string, row };
      onRow?.(read);
      if (!sink) return undefined;
      const piece = toSink ? toSink(read) : line;
      return piece === undefined ? undefined : Buffer.from(piece);
    },
    {
      terminate: !toSink,
      maxLineBytes: limits.maxLineBytes,
      tooLong: (bytes) =>
        new VerificationError(
          `${archive.where(object)}: line ${rowCount + 1} is longer than the ${limits.maxLineBytes} bytes expected (${bytes} so far)`,
          { object },
        ),
    },
  );
  try {
    const gunzip = createGunzip();
    if (sink) await pipeline(stored.body, hasher, gunzip, inflated, lines, sink, { signal });
    else await pipeline(stored.body, hasher, gunzip, inflated, lines, { signal });
  } catch (err) {
    if (err instanceof VerificationError) throw err;
    if ((err as { code?: string }).code?.startsWith('Z_'))
      fail(`does not decompress (${(err as Error).message})`);
    throw err;
  }
  return {
    encryption: stored.encryption,
    sha256: hasher.digest(),
    bytes: hasher.bytes,
    uncompressedBytes: inflated.bytes,
    maxLineBytes,
    rowCount,
  };
}

/** As readStoredObject's options; the key column and the limits come from the manifest. */
export type ReadBackOptions = Omit<ReadObjectOptions, 'keyColumn' | 'limits'>;

/**
 * Reads a data object back from the store and checks it against its manifest: SHA-256 and
 * size of the stored bytes, that it decompresses within the sizes the manifest states, that
 * every line is a JSON object holding the key column, the row count and the first and last
 * key. `onRow` sees each row as stored. Returns what the store told of the object.
 */
export async function readBackVerified(
  archive: TableArchive,
  manifest: ObjectManifest,
  options: ReadBackOptions,
): Promise<StoredObjectFacts> {
  const fail = (problem: string): never => {
    throw new VerificationError(`${archive.where(manifest.object)}: ${problem}`, {
      object: manifest.object,
    });
  };
  let firstKey: string | undefined;
  let lastKey: string | undefined;
  const facts = await readStoredObject(archive, manifest.object, {
    signal: options.signal,
    keyColumn: manifest.primaryKey.column,
    limits: {
      bytes: manifest.bytes,
      uncompressedBytes: manifest.uncompressedBytes,
      maxLineBytes: manifest.maxLineBytes,
    },
    onRow: (row) => {
      firstKey ??= row.key;
      lastKey = row.key;
      options.onRow?.(row);
    },
    ...(options.sink && { sink: options.sink }),
    ...(options.toSink && { toSink: options.toSink }),
  });
  if (facts.sha256 !== manifest.sha256)
    fail(`SHA-256 ${facts.sha256} differs from the manifest's ${manifest.sha256}`);
  if (facts.bytes !== manifest.bytes)
    fail(`${facts.bytes} bytes, the manifest says ${manifest.bytes}`);
  if (facts.rowCount !== manifest.rowCount)
    fail(`${facts.rowCount} rows, the manifest says ${manifest.rowCount}`);
  if (firstKey !== manifest.primaryKey.first || lastKey !== manifest.primaryKey.last) {
    fail(
      `keys ${firstKey}..${lastKey} differ from the manifest's ${manifest.primaryKey.first}..${manifest.primaryKey.last}`,
    );
  }
  return facts;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Passes bytes through, failing once more than `max` have gone by. */
class ByteCeiling extends Transform {
  bytes = 0;

  constructor(
    private readonly max: number,
    private readonly exceeded: (bytes: number) => never,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    try {
      if (this.bytes > this.max) this.exceeded(this.bytes);
      done(null, chunk);
    } catch (err) {
      done(err as Error);
    }
  }
}

/** md5 of a stored line: the fingerprint PostgreSQL recomputes as md5(row json) at delete time. */
export function lineFingerprint(line: Buffer): string {
  return createHash('md5').update(line).digest('hex');
}
