import type { PoolClient } from 'pg';
import { schemaHash, type TableShape } from '../src/archive/schema-snapshot';
import { TableSql } from '../src/archive/table-sql';
import { findTable, type ResolvedTable } from '../src/config';
import { inspectTable, requireArchivable } from '../src/postgres/inspect';
import { SchemaChangedError } from '../src/shared/errors';
import type { ResolvedTableRef } from '../src/shared/table-ref';
import type { TableArchive } from '../src/store/archive-store';
import type { ActivityDeps } from './deps';

/** A configured table as it is in the database now, ready for the archive's SQL. */
export interface TableContext {
  table: ResolvedTable;
  archive: TableArchive;
  shape: TableShape;
  schemaHash: string;
  sql: TableSql;
}

/** Reads the table's catalog entry on `client` and checks it can be archived. */
export async function loadTableContext(
  deps: ActivityDeps,
  ref: ResolvedTableRef,
  client: PoolClient,
): Promise<TableContext> {
  const table = findTable(deps.config, ref);
  const inspection = requireArchivable(await inspectTable(client, table), table);
  const shape: TableShape = {
    columns: inspection.columns.map((c) => ({ name: c.name, type: c.type, nullable: !c.not_null })),
    primaryKey: inspection.primaryKey,
  };
  return {
    table,
    archive: deps.store.table(ref),
    shape,
    schemaHash: schemaHash(shape),
    sql: new TableSql({
      schema: table.schema,
      name: table.name,
      timestampColumn: table.timestampColumn,
      primaryKey: table.primaryKey,
      columns: inspection.columns,
    }),
  };
}

/** Refuses to go on when the table no longer has the schema the run snapshotted. */
export function requireSchema(ctx: TableContext, expected: string): void {
  if (ctx.schemaHash !== expected) {
    throw new SchemaChangedError(
      `${ctx.table.database.name}: ${ctx.table.schema}.${ctx.table.name}: the schema changed during the run (${expected.slice(0, 12)} -> ${ctx.schemaHash.slice(0, 12)}); the next run archives with the new schema`,
      { database: ctx.table.database.name, table: `${ctx.table.schema}.${ctx.table.name}` },
    );
  }
}

/** Runs `fn` on a client of the table's database pool; a client that failed is discarded. */
export async function withClient<T>(
  deps: ActivityDeps,
  database: string,
  fn: (client: PoolClient) => Promise<T>,
): Promise<T> {
  const client = await deps.pools.get(database).connect();
  // A connection cut while the client is checked out but between queries (during an upload,
  // say) is emitted as an 'error' event; without a listener it would end the worker. The next
  // query fails with it anyway, and the client is discarded.
  let lost: Error | undefined;
  const onError = (err: Error) => (lost = err);
  client.on('error', onError);
  try {
    const result = await fn(client);
    client.off('error', onError);
    client.release(lost);
    return result;
  } catch (err) {
    client.off('error', onError);
    client.release(lost ?? (err instanceof Error ? err : true));
    throw err;
  }
}

/** Runs `fn` with the table's context, on a client of its database. */
export function withTable<T>(
  deps: ActivityDeps,
  ref: ResolvedTableRef,
  fn: (ctx: TableContext, client: PoolClient) => Promise<T>,
): Promise<T> {
  return withClient(deps, ref.database, async (client) =>
    fn(await loadTableContext(deps, ref, client), client),
  );
}
