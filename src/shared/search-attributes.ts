import {
  defineSearchAttributeKey,
  SearchAttributeType,
  type SearchAttributePair,
} from '@temporalio/common';

/**
 * Custom search attributes every archiver workflow carries, so runs can be found in the Web
 * UI and with `temporal workflow list -q "ArchiveTable = 'public.audit_log'"`. The local
 * stack registers them at start (temporal/lib.sh SEARCH_ATTRIBUTES) and the worker checks
 * them before it polls; a unit test keeps the three lists in step.
 */
export const ArchiveDatabase = defineSearchAttributeKey(
  'ArchiveDatabase',
  SearchAttributeType.KEYWORD,
);
/** `schema.table` */
export const ArchiveTable = defineSearchAttributeKey('ArchiveTable', SearchAttributeType.KEYWORD);

export const SEARCH_ATTRIBUTE_KEYS = [ArchiveDatabase, ArchiveTable] as const;

/** The search attributes of a run about one table: its database and `schema.table`. */
export function tableSearchAttributes(ref: {
  database: string;
  schema: string;
  table: string;
}): SearchAttributePair[] {
  return [
    { key: ArchiveDatabase, value: ref.database },
    { key: ArchiveTable, value: `${ref.schema}.${ref.table}` },
  ];
}
