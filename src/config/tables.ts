import { TableNotConfiguredError } from '../shared/errors';
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
  pauseBetweenBatchesMs: number;
}

function resolve(config: Config, database: DatabaseConfig, table: TableConfig): ResolvedTable {
  return {
    database,
    schema: table.schema,
    name: table.name,
    timestampColumn: table.timestamp_column,
    primaryKey: table.primary_key,
    retentionDays: table.retention_days ?? config.defaults.retention_days,
    batchSize: table.batch_size ?? config.defaults.batch_size,
    pauseBetweenBatchesMs:
      table.pause_between_batches_ms ?? config.defaults.pause_between_batches_ms,
  };
}

/** `schema.table`, or a bare `table` that matches in any schema. */
function matchesTable(table: TableConfig, wanted: string): boolean {
  return wanted.includes('.') ? `${table.schema}.${table.name}` === wanted : table.name === wanted;
}

export interface TableFilter {
  database?: string | undefined;
  /** `schema.table`, or a table name in any schema. */
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
  const selected = databases.flatMap((db) =>
    db.tables
      .filter((t) => filter.table === undefined || matchesTable(t, filter.table))
      .map((t) => resolve(config, db, t)),
  );
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
