import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { PoolClient } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type {
  BatchStart,
  Cursor,
  DayRange,
  ExportBatchInput,
  ExportBatchResult,
} from '../shared/archive-types';
import { VerificationError } from '../shared/errors';
import type { TableArchive } from '../store/archive-store';
import {
  OBJECT_MANIFEST_FORMAT,
  ROW_VERSIONS_FORMAT,
  type ObjectManifest,
  type RowVersions,
} from '../store/documents';
import { LineTransform } from './lines';
import { readStoredObject, UNKNOWN_OBJECT_LIMITS } from './read-back';
import { HashingPassThrough } from './streams';
import type { TableSql } from './table-sql';

/** What an export works with: the table's SQL and archive, on a client it may discard. */
export interface ExportIo {
  client: PoolClient;
  archive: TableArchive;
  sql: TableSql;
  /** The table as the run snapshotted it. */
  table: { keyColumn: string; timestampColumn: string; schemaHash: string; schemaKey: string };
  batchSize: number;
  /** gzip level of the object. */
  compressionLevel: number;
  workflowId: string;
  signal: AbortSignal;
  /** Called as rows stream, e.g. to report progress. */
  onProgress?: (rows: number) => void;
}

/** What the manifest says of the rows, as streamed or as read back. */
interface RowFacts {
  rowCount: number;
  firstKey: string;
  lastKey: string;
  minTimestamp: string;
  maxTimestamp: string;
  maxTimestampMicros: string;
  sha256: string;
  bytes: number;
  uncompressedBytes: number;
  maxLineBytes: number;
}

/**
 * Exports one batch, from the start the run recorded (rows of that UTC day older than the
 * cutoff, after its key, in key order), to a deterministic object with its manifest beside
 * it, and finds where the following batch starts. Never deletes or replaces an object: a
 * retry (or an overlapping earlier attempt) that finds the batch's manifest returns it; one
 * that finds the object without a manifest adopts it, making the manifest from a read-back
 * of what is stored; and the upload itself is conditional, so of two attempts that race,
 * the second adopts what the first stored. An object is stored only once a row is there to
 * go in it.
 */
export async function exportBatch(
  io: ExportIo,
  input: ExportBatchInput,
): Promise<ExportBatchResult> {
  const { start } = input;
  const object = io.archive.dataKey(start.day, input.run, input.batch);
  let manifest = await io.archive.manifest(object);
  if (!manifest) {
    const stored = await store(io, input, object);
    if (stored === 'empty') return { kind: 'empty' };
    manifest = await io.archive.saveManifest(stored);
  }
  // The run goes on after this batch's last key, whatever size an earlier attempt used, so
  // no row of the day is skipped; the search moves on when the day has no more.
  const next: Cursor = { day: start.day, afterKey: manifest.primaryKey.last };
  const following = (await findBatchDay(io, input.cutoff, next, input.holds)) ?? null;
  return {
    kind: 'batch',
    object,
    day: start.day,
    rowCount: manifest.rowCount,
    bytes: manifest.bytes,
    firstKey: manifest.primaryKey.first,
    lastKey: manifest.primaryKey.last,
    maxTimestamp: manifest.timestamp.max,
    maxTimestampMicros: manifest.timestamp.maxMicros,
    next,
    following,
  };
}

/**
 * The batch's object: streamed from PostgreSQL, or adopted when another attempt stored it;
 * `empty` when its rows are gone and nothing is stored.
 */
async function store(
  io: ExportIo,
  input: ExportBatchInput,
  object: string,
): Promise<ObjectManifest | 'empty'> {
  const { day } = input.start;
  const adopt = async () =>
    manifestOf(io, input, object, day, await readFacts(io, object, day), true);
  if (await io.archive.dataExists(object, io.signal)) return adopt();
  io.signal.throwIfAborted();
  const streamed = await streamToStore(io, object, {
    cutoff: input.cutoff,
    dayStart: `${day}T00:00:00Z`,
    dayEnd: `${nextDate(day)}T00:00:00Z`,
    afterKey: input.start.afterKey,
    limit: Math.min(input.batchSize ?? io.batchSize, io.batchSize),
  });
  if (streamed === 'exists') return adopt();
  if (streamed === 'empty') return 'empty';
  // Before the manifest, so a verify that finds the manifest finds the versions too; an
  // attempt that dies between them leaves an object whose rows are matched by fingerprint.
  const { facts, versions } = streamed;
  await io.archive.saveRowVersions({
    format: ROW_VERSIONS_FORMAT,
    object,
    objectSha256: facts.sha256,
    rowCount: facts.rowCount,
    ...versions,
    createdAt: new Date().toISOString(),
  });
  return manifestOf(io, input, object, day, facts, false);
}

function manifestOf(
  io: ExportIo,
  input: ExportBatchInput,
  object: string,
  day: string,
  facts: RowFacts,
  adopted: boolean,
): ObjectManifest {
  return {
    format: OBJECT_MANIFEST_FORMAT,
    object,
    database: input.table.database,
    schema: input.table.schema,
    table: input.table.table,
    schemaHash: io.table.schemaHash,
    schemaKey: io.table.schemaKey,
    day,
    rowCount: facts.rowCount,
    primaryKey: { column: io.table.keyColumn, first: facts.firstKey, last: facts.lastKey },
    timestamp: {
      column: io.table.timestampColumn,
      min: facts.minTimestamp,
      max: facts.maxTimestamp,
      maxMicros: facts.maxTimestampMicros,
    },
    sha256: facts.sha256,
    bytes: facts.bytes,
    uncompressedBytes: facts.uncompressedBytes,
    maxLineBytes: facts.maxLineBytes,
    encoding: 'jsonl+gzip',
    cutoff: input.cutoff,
    workflowId: io.workflowId,
    run: input.run,
    batch: input.batch,
    adopted,
    createdAt: new Date().toISOString(),
  };
}

/**
 * The facts of an object another attempt stored, from a read-back of it: every line must
 * hold the key and the timestamp, keys must ascend, and every timestamp must fall in the
 * object's day, or the object is not this batch's and nothing may rely on it.
 */
async function readFacts(io: ExportIo, object: string, day: string): Promise<RowFacts> {
  const fail = (problem: string): never => {
    throw new VerificationError(`${io.archive.where(object)}: ${problem}; it was left as it is`, {
      object,
    });
  };
  let firstKey: string | undefined;
  let lastKey = '';
  let min: string | undefined;
  let max: string | undefined;
  const facts = await readStoredObject(io.archive, object, {
    signal: io.signal,
    keyColumn: io.table.keyColumn,
    limits: UNKNOWN_OBJECT_LIMITS,
    onRow: ({ key, row }) => {
      const ts = row[io.table.timestampColumn];
      if (typeof ts !== 'string') fail(`a line has no "${io.table.timestampColumn}" value`);
      firstKey ??= key;
      lastKey = key;
      // Text forms of one day's instants in the session's fixed format order as the instants do.
      if (min === undefined || (ts as string) < min) min = ts as string;
      if (max === undefined || (ts as string) > max) max = ts as string;
    },
  });
  if (firstKey === undefined || min === undefined || max === undefined)
    return fail('it holds no rows');
  const [minMicros, maxMicros] = [await micros(io, min), await micros(io, max)];
  const dayStart = BigInt(Date.parse(`${day}T00:00:00Z`)) * 1000n;
  if (BigInt(minMicros) < dayStart || BigInt(maxMicros) >= dayStart + 86_400_000_000n)
    fail(`its rows are not all of ${day}`);
  return {
    rowCount: facts.rowCount,
    firstKey,
    lastKey,
    minTimestamp: min,
    maxTimestamp: max,
    maxTimestampMicros: maxMicros,
    sha256: facts.sha256,
    bytes: facts.bytes,
    uncompressedBytes: facts.uncompressedBytes,
    maxLineBytes: facts.maxLineBytes,
  };
}

async function micros(io: ExportIo, timestamp: string): Promise<string> {
  const { rows } = await io.client.query<{ micros: string }>(io.sql.micros(), [timestamp]);
  return rows[0]!.micros;
}

/**
 * Streams one batch from COPY through gzip into the store (row data never passes through
 * Temporal), computing the manifest's facts and collecting each row's version on the way.
 * The upload starts with the first row: a batch whose rows are gone stores nothing
 * (`empty`). `exists` when the key was taken by the time the upload completed. The caller
 * owns the client and must discard it if this throws, since the COPY may be half-read.
 * Memory: the upload's two 8 MiB parts in flight, the stream buffers, and a ctid and an
 * xmin per row.
 */
async function streamToStore(
  io: ExportIo,
  object: string,
  batch: Parameters<TableSql['exportCopy']>[0],
): Promise<{ facts: RowFacts; versions: RowVersions } | 'exists' | 'empty'> {
  const versions: RowVersions = { ctids: [], xmins: [] };
  let rowCount = 0;
  let firstKey = '';
  let lastKey = '';
  let uncompressedBytes = 0;
  let maxLineBytes = 0;
  let min: { micros: bigint; text: string } | undefined;
  let max: { micros: bigint; text: string } | undefined;
  const hasher = new HashingPassThrough();
  let upload: Promise<'created' | 'exists'> | undefined;
  let uploadFailed = (_err: unknown) => undefined as void;
  const failed = new Promise<never>((_resolve, reject) => (uploadFailed = reject));
  failed.catch(() => undefined);

  const reader = io.sql.copyLineReader();
  const rows = new LineTransform(
    (copyLine) => {
      const { micros: at, ctid, xmin, key, timestamp, line } = reader.read(copyLine);
      versions.ctids.push(ctid);
      versions.xmins.push(xmin);
      if (rowCount === 0) {
        firstKey = key;
        upload = io.archive.uploadData(object, hasher, io.signal);
        upload.catch(uploadFailed);
      }
      lastKey = key;
      if (!min || at < min.micros) min = { micros: at, text: timestamp };
      if (!max || at > max.micros) max = { micros: at, text: timestamp };
      uncompressedBytes += line.length + 1;
      if (line.length > maxLineBytes) maxLineBytes = line.length;
      if (++rowCount % 5_000 === 0) io.onProgress?.(rowCount);
      return line;
    },
    { terminate: true },
  );
  // With no row there is no upload to read the gzip's few bytes: let them flow away, so the
  // pipeline (which waits for its last stream to end) ends.
  rows.once('end', () => {
    if (!upload) hasher.resume();
  });
  const source = io.client.query(copyTo(io.sql.exportCopy(batch)));
  try {
    await Promise.race([
      pipeline(source, rows, createGzip({ level: io.compressionLevel }), hasher, {
        signal: io.signal,
      }),
      failed,
    ]);
    if (!upload) {
      hasher.destroy();
      return 'empty';
    }
    if ((await upload) === 'exists') return 'exists';
  } catch (err) {
    // Whichever side failed first, stop the other: no half-read COPY, no orphaned upload.
    source.destroy();
    hasher.destroy();
    throw err;
  }
  const facts: RowFacts = {
    rowCount,
    firstKey,
    lastKey,
    minTimestamp: min!.text,
    maxTimestamp: max!.text,
    maxTimestampMicros: max!.micros.toString(),
    sha256: hasher.digest(),
    bytes: hasher.bytes,
    uncompressedBytes,
    maxLineBytes,
  };
  return { facts, versions };
}

/**
 * Where the next batch starts: the oldest day at or after the cursor that holds an eligible
 * row after the cursor's key, skipping held days.
 */
export async function findBatchDay(
  io: Pick<ExportIo, 'client' | 'sql'>,
  cutoff: string,
  cursor: Cursor,
  holds: readonly DayRange[],
): Promise<BatchStart | undefined> {
  let { day, afterKey } = cursor;
  if (day === null) day = await oldestDayFrom(io, cutoff, null);
  while (day !== null) {
    const current = day;
    const hold = holds.find((h) => h.first <= current && current <= h.last);
    if (hold) {
      day = await oldestDayFrom(io, cutoff, nextDate(hold.last));
      afterKey = null;
      continue;
    }
    const { rows } = await io.client.query<{ found: boolean }>(io.sql.rowsInDay(), [
      `${day}T00:00:00Z`,
      `${nextDate(day)}T00:00:00Z`,
      cutoff,
      afterKey,
    ]);
    if (rows[0]?.found) return { day, afterKey };
    day = await oldestDayFrom(io, cutoff, nextDate(day));
    afterKey = null;
  }
  return undefined;
}

async function oldestDayFrom(
  io: Pick<ExportIo, 'client' | 'sql'>,
  cutoff: string,
  from: string | null,
): Promise<string | null> {
  const { rows } = await io.client.query<{ day: string | null }>(io.sql.nextDay(), [
    cutoff,
    from === null ? null : `${from}T00:00:00Z`,
  ]);
  return rows[0]?.day ?? null;
}

/** The day after a YYYY-MM-DD day. */
export function nextDate(day: string): string {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + 1);
  return date.toISOString().slice(0, 10);
}
