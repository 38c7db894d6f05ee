/**
 * Where things live in the bucket (CONTRACT §4). The layout is part of the archive's format:
 * restore and validate find everything from these keys alone, so a change here is a format
 * change.
 *
 *   {prefix}{database}/{schema}.{table}/
 *     year=YYYY/month=MM/day=DD/{run}-{batch}.jsonl.gz    rows of one UTC day
 *     year=YYYY/month=MM/day=DD/{run}-{batch}.manifest.json   what the object holds
 *     year=YYYY/month=MM/day=DD/{run}-{batch}.deletion.json   keys the delete may remove
 *     year=YYYY/month=MM/day=DD/{run}-{batch}.deleted.json    what the delete removed
 *     _schema/{schemaHash}.json, _schema/latest.json, _schema/changes/{when}.json
 *     _state/watermark.json
 *     _restored/{target database}/{schema}.{table}/{run}-{batch}.json   restore receipts
 *     _holds/{id}.json                                  day ranges the archive leaves alone
 */

/**
 * A name as one key segment. Identifiers may hold any character; `/` would split the
 * segment and `%` is the escape, so both (and control characters) are percent-encoded.
 */
export function keySegment(name: string): string {
  let segment = '';
  for (const char of name) {
    const code = char.codePointAt(0)!;
    const escape = char === '%' || char === '/' || code < 0x20 || code === 0x7f;
    segment += escape ? `%${code.toString(16).toUpperCase().padStart(2, '0')}` : char;
  }
  return segment;
}

export interface TableLocation {
  prefix: string;
  database: string;
  schema: string;
  table: string;
}

/** `{prefix}{database}/{schema}.{table}/` */
export function tablePrefix(at: TableLocation): string {
  return `${at.prefix}${keySegment(at.database)}/${keySegment(at.schema)}.${keySegment(at.table)}/`;
}

/** Schema snapshots are content-addressed: one object per distinct schema, never rewritten. */
export function schemaSnapshotKey(at: TableLocation, schemaHash: string): string {
  return `${tablePrefix(at)}_schema/${schemaHash}.json`;
}

const DATA_SUFFIX = '.jsonl.gz';

/**
 * The data object of one batch. Deterministic for a batch of a run, so a retried export
 * finds its own earlier attempt; `run` makes keys of different runs distinct, so an object a
 * deletion manifest refers to is never written again.
 */
export function dataObjectKey(at: TableLocation, day: string, run: string, batch: number): string {
  const [year, month, date] = day.split('-');
  return `${tablePrefix(at)}year=${year}/month=${month}/day=${date}/${run}-${String(batch).padStart(6, '0')}${DATA_SUFFIX}`;
}

function sibling(dataKey: string, suffix: string): string {
  if (!dataKey.endsWith(DATA_SUFFIX)) throw new Error(`not a data object key: ${dataKey}`);
  return dataKey.slice(0, -DATA_SUFFIX.length) + suffix;
}

export const manifestKey = (dataKey: string) => sibling(dataKey, '.manifest.json');
export const deletionManifestKey = (dataKey: string) => sibling(dataKey, '.deletion.json');
export const deletionReceiptKey = (dataKey: string) => sibling(dataKey, '.deleted.json');

export const latestSchemaKey = (at: TableLocation) => `${tablePrefix(at)}_schema/latest.json`;
export const schemaChangeKey = (at: TableLocation, when: string, toHash: string) =>
  `${tablePrefix(at)}_schema/changes/${when.replace(/[:.]/g, '')}-${toHash.slice(0, 12)}.json`;
export const watermarkKey = (at: TableLocation) => `${tablePrefix(at)}_state/watermark.json`;

/** The day (YYYY-MM-DD) of a data object key, from its Hive-style partition path. */
export function dayOfKey(key: string): string | undefined {
  const m = /\/year=(\d{4})\/month=(\d{2})\/day=(\d{2})\/[^/]+$/.exec(key);
  return m ? `${m[1]}-${m[2]}-${m[3]}` : undefined;
}

export const isDataKey = (key: string) => key.endsWith(DATA_SUFFIX);
/** `{run}-{batch}`: the name a data object and its sidecar documents share. */
export const stemName = (dataKey: string) =>
  sibling(dataKey, '').slice(sibling(dataKey, '').lastIndexOf('/') + 1);

/** Where restores into `target` record which data objects they restored (the restore watermark). */
export function restoreReceiptsPrefix(at: TableLocation, target: TableLocation): string {
  return `${tablePrefix(at)}_restored/${keySegment(target.database)}/${keySegment(target.schema)}.${keySegment(target.table)}/`;
}

export function restoreReceiptKey(
  at: TableLocation,
  target: TableLocation,
  dataKey: string,
): string {
  return `${restoreReceiptsPrefix(at, target)}${stemName(dataKey)}.json`;
}

export const holdsPrefix = (at: TableLocation) => `${tablePrefix(at)}_holds/`;
