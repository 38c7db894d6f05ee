import { nameSegment, tablePath, type TableNames } from '../shared/names';

/**
 * Where things live in the bucket. The layout is part of the archive's format: restore and
 * validate find everything from these keys alone, so a change here is a format change.
 *
 *   {prefix}{database}/{schema}.{table}/                    (names encoded: src/shared/names.ts)
 *     year=YYYY/month=MM/day=DD/{run}-{batch}.jsonl.gz           rows of one UTC day
 *     year=YYYY/month=MM/day=DD/{run}-{batch}.manifest.json      what the object holds
 *     year=YYYY/month=MM/day=DD/{run}-{batch}.deletion.json      rows the delete may remove
 *     year=YYYY/month=MM/day=DD/{run}-{batch}.deleting-{txid}.json   a delete transaction's keys, before its commit
 *     year=YYYY/month=MM/day=DD/{run}-{batch}.deleted.json       rows the delete removed
 *     _schema/{schemaHash}.json, _schema/latest.json, _schema/changes/{when}-{hash}.json
 *     _state/watermark.json
 *     _restored/{database}/{schema}.{table}/{run}-{batch}.json   restore receipts per target
 *     _holds/{id}.json, _holds/{id}.released.json                days the archive leaves alone
 */

export interface TableLocation extends TableNames {
  prefix: string;
}

/** `{prefix}{database}/{schema}.{table}/` */
export function tablePrefix(at: TableLocation): string {
  return `${at.prefix}${tablePath(at)}/`;
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

/** A data object's key without its suffix: the stem its sidecar documents share. */
function stemKey(dataKey: string): string {
  if (!dataKey.endsWith(DATA_SUFFIX)) throw new Error(`not a data object key: ${dataKey}`);
  return dataKey.slice(0, -DATA_SUFFIX.length);
}

export const manifestKey = (dataKey: string) => `${stemKey(dataKey)}.manifest.json`;
export const rowVersionsKey = (dataKey: string) => `${stemKey(dataKey)}.versions.json`;
export const deletionManifestKey = (dataKey: string) => `${stemKey(dataKey)}.deletion.json`;
export const deletionReceiptKey = (dataKey: string) => `${stemKey(dataKey)}.deleted.json`;
/** Delete intents of one object are listed by this prefix; the transaction id follows it. */
export const deleteIntentPrefix = (dataKey: string) => `${stemKey(dataKey)}.deleting-`;
export const deleteIntentKey = (dataKey: string, txid: string) =>
  `${deleteIntentPrefix(dataKey)}${txid}.json`;

export const schemaSnapshotKey = (at: TableLocation, schemaHash: string) =>
  `${tablePrefix(at)}_schema/${schemaHash}.json`;
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
export function stemName(dataKey: string): string {
  const stem = stemKey(dataKey);
  return stem.slice(stem.lastIndexOf('/') + 1);
}

/**
 * The data object a sidecar document (manifest, row versions, deletion manifest, intent,
 * receipt) belongs to.
 */
export function dataKeyOfSidecar(key: string): string | undefined {
  const m = /^(.*)\.(manifest|versions|deletion|deleted|deleting-[^/]+)\.json$/.exec(key);
  return m ? `${m[1]}${DATA_SUFFIX}` : undefined;
}

/** Where restores into `target` record which data objects they restored (the restore watermark). */
export const restoreReceiptsPrefix = (at: TableLocation, target: TableNames) =>
  `${tablePrefix(at)}_restored/${tablePath(target)}/`;
export const restoreReceiptKey = (at: TableLocation, target: TableNames, dataKey: string) =>
  `${restoreReceiptsPrefix(at, target)}${stemName(dataKey)}.json`;

export const holdsPrefix = (at: TableLocation) => `${tablePrefix(at)}_holds/`;
export const holdKey = (at: TableLocation, id: string) =>
  `${holdsPrefix(at)}${nameSegment(id)}.json`;
export const holdReleaseKey = (at: TableLocation, id: string) =>
  `${holdsPrefix(at)}${nameSegment(id)}.released.json`;

/** The doctor's probe objects: the only keys anything ever deletes. */
export const probeKey = (prefix: string, name: string) => `${prefix}_doctor/probe-${name}`;
export const isProbeKey = (key: string) => /(^|\/)_doctor\/probe-[^/]+$/.test(key);

/** The audit trail: one write-once record per key, numbered from 0, below the archive prefix. */
export const auditTrailPrefix = (prefix: string) => `${prefix}_audit-trail/`;
export const auditRecordKey = (prefix: string, seq: number) =>
  `${auditTrailPrefix(prefix)}${String(seq).padStart(12, '0')}.json`;
export const auditHeadKey = (prefix: string) => `${prefix}_audit-trail-head.json`;
/** The number of an audit record's key, or undefined for any other key. */
export function seqOfAuditKey(prefix: string, key: string): number | undefined {
  const match = /^(\d{12})\.json$/.exec(key.slice(auditTrailPrefix(prefix).length));
  return key.startsWith(auditTrailPrefix(prefix)) && match ? Number(match[1]) : undefined;
}

/** Whether a key is the audit trail's (a record or the head pointer) under `prefix`. */
export const isAuditTrailKey = (prefix: string, key: string) =>
  key.startsWith(auditTrailPrefix(prefix)) || key === auditHeadKey(prefix);
