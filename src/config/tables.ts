import { TableNotConfiguredError } from '../shared/errors';
import { parseTableName } from '../shared/table-ref';
import type { Config, DatabaseConfig, TableConfig } from './schema';

/** A configured table with every inherited setting resolved. */
export interface ResolvedTable {
  database: DatabaseConfig;
  schema: string;
  name: string;
  timestampColumn: string;
  primaryKey: string;
  retentionDays: number;
  batchSize: number;
  /** gzip level of the data objects. */
  compressionLevel: number;
  pauseBetweenBatchesMs: number;
  /** Its data classification (compliance.classifications), if it declares one. */
  classification: string | null;
  /** Its archive is only written to a store proven to encrypt (docs/compliance.md). */
  requireEncryption: boolean;
  /** S3 Object Lock retention of every object archived from it, or null for none. */
  objectLock: ObjectLockRetention | null;
  /** The config's legal hold on it, or null. */
  legalHold: ConfiguredLegalHold | null;
  /** What a run does when its schema changed since the last snapshot. */
  schemaDrift: 'warn' | 'block' | 'follow';
}

export type ConfiguredLegalHold = NonNullable<TableConfig['legal_hold']>;

/** How long, and in which mode, Object Lock keeps an archived object from deletion. */
export interface ObjectLockRetention {
  days: number;
  mode: 'GOVERNANCE' | 'COMPLIANCE';
}

function resolve(config: Config, database: DatabaseConfig, table: TableConfig): ResolvedTable {
  const rules =
    table.classification === undefined
      ? undefined
      : config.compliance.classifications[table.classification];
  const lockDays = rules?.archive_retention_days ?? null;
  return {
    database,
    schema: table.schema,
    name: table.name,
    timestampColumn: table.timestamp_column,
    primaryKey: table.primary_key,
    retentionDays: table.retention_days ?? config.defaults.retention_days,
    batchSize: table.batch_size ?? config.defaults.batch_size,
    compressionLevel: table.compression_level ?? config.defaults.compression_level,
    pauseBetweenBatchesMs:
      table.pause_between_batches_ms ?? config.defaults.pause_between_batches_ms,
    classification: table.classification ?? null,
    requireEncryption: table.require_encryption ?? rules?.require_encryption ?? false,
    objectLock:
      lockDays === null ? null : { days: lockDays, mode: config.compliance.object_lock_mode },
    legalHold: table.legal_hold ?? null,
    schemaDrift: table.schema_drift ?? config.defaults.schema_drift,
  };
}

/** A filter with a double-quoted name (`"a.b".c`), parsed; undefined for a plain one. */
function parseQuoted(wanted: string): { schema?: string; table: string } | undefined {
  return /(^|\.)"/.test(wanted) ? parseTableName(wanted) : undefined;
}

/** `schema.table`, a bare `table` that matches in any schema, or either with quoted names. */
function matchesTable(table: TableConfig, wanted: string): boolean {
  const quoted = parseQuoted(wanted);
  if (quoted)
    return (
      table.name === quoted.table && (quoted.schema === undefined || table.schema === quoted.schema)
    );
  return table.name === wanted || `${table.schema}.${table.name}` === wanted;
}

/** A name as a filter would have to quote it to mean only that name. */
function quotedName(name: string): string {
  return /[."]/.test(name) ? `"${name.replace(/"/g, '""')}"` : name;
}

export interface TableFilter {
  database?: string | undefined;
  /** `schema.table`, or a table name in any schema; names with dots in double quotes. */
  table?: string | undefined;
}

/**
 * The configured tables a command works on. A filter that matches nothing is an error
 * naming what is configured, never an empty run that looks like success.
 */
export function selectTables(config: Config, filter: TableFilter = {}): ResolvedTable[] {
  const databases = config.databases.filter(
    (db) => filter.database === undefined || db.name === filter.database,
  );
  if (databases.length === 0) {
    throw new TableNotConfiguredError(
      `database "${filter.database}" is not in the config (configured: ${config.databases.map((d) => d.name).join(', ')})`,
      { database: filter.database },
    );
  }
  const selected = databases.flatMap((db) => {
    const tables = db.tables.filter(
      (t) => filter.table === undefined || matchesTable(t, filter.table),
    );
    // `a.b.c` names both "a.b".c and a."b.c": never guess which.
    if (filter.table?.includes('.') && !parseQuoted(filter.table) && tables.length > 1) {
      throw new TableNotConfiguredError(
        `table "${filter.table}" is ambiguous in database "${db.name}": it names ${tables.map((t) => `${quotedName(t.schema)}.${quotedName(t.name)}`).join(' and ')}; quote the names to choose one`,
        { database: db.name, table: filter.table },
      );
    }
    return tables.map((t) => resolve(config, db, t));
  });
  if (selected.length === 0) {
    throw new TableNotConfiguredError(
      `table "${filter.table}" is not configured in ${filter.database ? `database "${filter.database}"` : 'any database'}`,
      { database: filter.database, table: filter.table },
    );
  }
  return selected;
}

/** The one configured table a workflow names by database, schema and table. */
export function findTable(
  config: Config,
  ref: { database: string; schema: string; table: string },
): ResolvedTable {
  const db = config.databases.find((d) => d.name === ref.database);
  const table = db?.tables.find((t) => t.schema === ref.schema && t.name === ref.table);
  if (!db || !table) {
    throw new TableNotConfiguredError(
      `table ${ref.schema}.${ref.table} of database "${ref.database}" is not in the worker's config`,
      { ...ref },
    );
  }
  return resolve(config, db, table);
}

/**
 * The Object Lock retention of a configured table's archive: null when its classification
 * sets none, or when the config no longer lists the table.
 */
export function objectLockOf(
  config: Config,
  ref: { database: string; schema: string; table: string },
): ObjectLockRetention | null {
  try {
    return findTable(config, ref).objectLock;
  } catch (err) {
    if (err instanceof TableNotConfiguredError) return null;
    throw err;
  }
}
