import type { ClientBase } from 'pg';

/** Columns of the table's primary key constraint, in key order; empty when it has none. */
export async function primaryKeyColumns(client: ClientBase, tableOid: string): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `select a.attname::text as name
       from pg_catalog.pg_index i
      cross join lateral unnest(i.indkey) with ordinality as k(attnum, position)
       join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
      where i.indrelid = $1::oid
        and i.indisprimary
      order by k.position`,
    [tableOid],
  );
  return rows.map((r) => r.name);
}
