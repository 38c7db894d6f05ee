import {
  defineSearchAttributeKey,
  SearchAttributeType,
  type SearchAttributePair,
} from '@temporalio/common';

/**
 * Custom search attributes every archiver workflow carries, so runs can be found in the Web
 * UI and with `temporal workflow list -q "ArchiveTable = 'public.audit_log'"`. The local
 * stack registers them at start (temporal/lib.sh SEARCH_ATTRIBUTES) and the worker checks
 * them before it polls; a unit test keeps the lists in step. docs/web-ui.md says what an
 * operator filters on.
 */
export const ArchiveDatabase = defineSearchAttributeKey(
  'ArchiveDatabase',
  SearchAttributeType.KEYWORD,
);
/** `schema.table` */
export const ArchiveTable = defineSearchAttributeKey('ArchiveTable', SearchAttributeType.KEYWORD);
/** How a run ended (one of RUN_OUTCOMES); set as it ends, absent while it runs. */
export const ArchiveOutcome = defineSearchAttributeKey(
  'ArchiveOutcome',
  SearchAttributeType.KEYWORD,
);

export const SEARCH_ATTRIBUTE_KEYS = [ArchiveDatabase, ArchiveTable, ArchiveOutcome] as const;

/**
 * The values of ArchiveOutcome, one word each so that `ArchiveOutcome = 'failed'` finds
 * them. Archive runs: archived (rows moved), nothing-to-archive (no row was past its
 * retention), locked (another run held the table), dry-run; restores: restored; validation:
 * valid, problems; schema snapshots: stored, unchanged; holds: placed, released, listed;
 * the audit trail: verified, broken, listed; any workflow: failed, cancelled.
 */
export const RUN_OUTCOMES = [
  'archived',
  'nothing-to-archive',
  'locked',
  'dry-run',
  'restored',
  'valid',
  'problems',
  'stored',
  'unchanged',
  'placed',
  'released',
  'listed',
  'verified',
  'broken',
  'failed',
  'cancelled',
] as const;
export type RunOutcome = (typeof RUN_OUTCOMES)[number];

/** The search attribute a run carries once it ended so. */
export function outcomeSearchAttribute(outcome: RunOutcome): SearchAttributePair[] {
  return [{ key: ArchiveOutcome, value: outcome }];
}

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
