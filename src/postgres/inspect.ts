import type { ClientBase } from 'pg';
import type { ResolvedTable } from '../config';

import { TableNotFoundError, TableShapeError } from '../shared/errors';
import { findTable } from './sql/find-table';
import { hasUniqueIndexOn } from './sql/has-unique-index';
import { primaryKeyColumns } from './sql/primary-key';
import { tableColumns, type DbColumnRow } from './sql/table-columns';

/** What an inspection needs to know of a table: where it is and the columns the archive uses. */
export type InspectedTable = Pick<
  ResolvedTable,
  'database' | 'schema' | 'name' | 'timestampColumn' | 'primaryKey'
>;

/** Types a timestamp column may have: each orders rows in time and maps to a UTC day. */
export const TIMESTAMP_TYPES: readonly string[] = ['timestamptz', 'timestamp', 'date'];

export type Check = { ok: true; detail: string } | { ok: false; problem: string };

export type TableInspection =
  | { found: false }
  | {
      found: true;
      oid: string;
      columns: DbColumnRow[];
      /** Columns of the table's primary key constraint (may differ from the configured key). */
      primaryKey: string[];
      timestampColumn: Check;
      keyColumn: Check;
      privileges: Check;
    };

/**
 * Looks at a configured table the way the archiver will use it, and says for each
 * requirement whether it holds. Reads the catalog only.
 */
export async function inspectTable(
  client: ClientBase,
  table: InspectedTable,
): Promise<TableInspection> {
  const row = await findTable(client, table.schema, table.name);
  if (!row) return { found: false };
  // One client runs one query at a time: these go one after the other.
  const columns = await tableColumns(client, row.oid);
  const primaryKey = await primaryKeyColumns(client, row.oid);
  const keyIsUnique = await hasUniqueIndexOn(client, row.oid, table.primaryKey);
  return {
    found: true,
    oid: row.oid,
    columns,
    primaryKey,
    timestampColumn: checkTimestampColumn(columns, table.timestampColumn),
    keyColumn: checkKeyColumn(columns, table.primaryKey, keyIsUnique),
    privileges:
      row.can_select && row.can_delete
        ? { ok: true, detail: 'SELECT and DELETE granted' }
        : {
            ok: false,
            problem: `the connected role lacks ${[!row.can_select && 'SELECT', !row.can_delete && 'DELETE'].filter(Boolean).join(' and ')}`,
          },
  };
}

function checkTimestampColumn(columns: DbColumnRow[], name: string): Check {
  const column = columns.find((c) => c.name === name);
  if (!column) return { ok: false, problem: `column "${name}" does not exist` };
  if (!TIMESTAMP_TYPES.includes(column.base_type)) {
    return {
      ok: false,
      problem: `column "${name}" is ${column.type}, expected timestamp with time zone, timestamp or date`,
    };
  }
  return { ok: true, detail: `${name} (${column.type})` };
}

function checkKeyColumn(columns: DbColumnRow[], name: string, unique: boolean): Check {
  if (!columns.some((c) => c.name === name)) {
    return { ok: false, problem: `column "${name}" does not exist` };
  }
  if (!unique) {
    return {
      ok: false,
      problem: `column "${name}" has no unique index of its own (a primary key or unique index on exactly this column is needed)`,
    };
  }
  return { ok: true, detail: `${name} (unique, indexed)` };
}

/** The inspection, or the first reason the table cannot be archived, as a non-retryable error. */
export function requireArchivable(
  inspection: TableInspection,
  table: InspectedTable,
): Extract<TableInspection, { found: true }> {
  const where = `${table.database.name}: ${table.schema}.${table.name}`;
  if (!inspection.found) {
    throw new TableNotFoundError(`${where}: table does not exist (or is not visible to the role)`, {
      database: table.database.name,
      table: `${table.schema}.${table.name}`,
    });
  }
  for (const [setting, check] of [
    ['timestamp_column', inspection.timestampColumn],
    ['primary_key', inspection.keyColumn],
  ] as const) {
    if (!check.ok) {
      throw new TableShapeError(`${where}: ${setting}: ${check.problem}`, {
        database: table.database.name,
        table: `${table.schema}.${table.name}`,
      });
    }
  }
  return inspection;
}
