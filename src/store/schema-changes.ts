import type { TableNames } from '../shared/names';
import type { ArchiveStore } from './archive-store';
import {
  latestSchemaSchema,
  parseDocument,
  schemaChangeSchema,
  type SchemaChange,
} from './documents';
import { latestSchemaKey, tablePrefix } from './layout';

/**
 * The change that made a table's latest schema, as its run recorded it
 * (`_schema/changes/{when}-{hash}.json`, see layout.ts), for the schema-drift notification;
 * undefined when the latest schema has no recorded change. Reads only: two small listings
 * and two documents.
 */
export async function latestSchemaChange(
  store: ArchiveStore,
  table: TableNames,
): Promise<SchemaChange | undefined> {
  const location = { prefix: store.prefix, ...table };
  const latestKey = latestSchemaKey(location);
  const latestText = await store.bucket.getText(latestKey);
  if (latestText === undefined) return undefined;
  const latest = parseDocument(store.bucket.where(latestKey), latestText, latestSchemaSchema);
  const keys = await store.bucket.listAll(`${tablePrefix(location)}_schema/changes/`);
  const key = [...keys.keys()]
    .filter((k) => k.endsWith(`-${latest.schemaHash.slice(0, 12)}.json`))
    .sort()
    .at(-1);
  if (key === undefined) return undefined;
  const text = await store.bucket.getText(key);
  return text === undefined
    ? undefined
    : parseDocument(store.bucket.where(key), text, schemaChangeSchema);
}
