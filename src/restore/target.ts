import type { ClientBase } from 'pg';
import type { DatabaseConfig } from '../config';
import { inspectTable } from '../postgres/inspect';
import { TableNotFoundError, TableShapeError } from '../shared/errors';
import type { RestoreTarget } from '../shared/restore-types';
import type { RestoreTargetShape } from './restore-object';

/**
 * The target table's columns and key as they are now, on a client of its database: it must
 * exist and have the archive's key column. Side-by-side targets need not be in the config.
 */
export async function inspectTarget(
  client: ClientBase,
  db: DatabaseConfig,
  target: RestoreTarget,
  keyColumn: string,
): Promise<RestoreTargetShape> {
  const inspection = await inspectTable(client, {
    database: db,
    schema: target.schema,
    name: target.table,
    timestampColumn: '',
    primaryKey: keyColumn,
  });
  const where = `${target.database}: ${target.schema}.${target.table}`;
  if (!inspection.found) throw new TableNotFoundError(`${where}: target table does not exist`);
  if (!inspection.columns.some((c) => c.name === keyColumn)) {
    throw new TableShapeError(`${where}: has no column "${keyColumn}" (the archive's key)`);
  }
  return {
    schema: target.schema,
    table: target.table,
    columns: inspection.columns,
    keyIsUnique: inspection.keyColumn.ok,
  };
}
