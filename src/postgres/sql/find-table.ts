import type { ClientBase } from 'pg';

export interface DbTableRow {
  oid: string;
  /** r = ordinary table, p = partitioned table. */
  relkind: string;
  can_select: boolean;
  can_delete: boolean;
}

/** The table's catalog entry and the connected role's privileges on it, if it exists. */
export async function findTable(
  client: ClientBase,
  schema: string,
  table: string,
): Promise<DbTableRow | undefined> {
  const { rows } = await client.query<DbTableRow>(
    `select c.oid::text as oid,
            c.relkind::text as relkind,
            has_table_privilege(c.oid, 'select') as can_select,
            has_table_privilege(c.oid, 'delete') as can_delete
       from pg_catalog.pg_class c
       join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1::text
        and c.relname = $2::text
        and c.relkind in ('r', 'p')`,
    [schema, table],
  );
  return rows[0];
}
