import type { ClientBase } from 'pg';

/**
 * Whether a valid, non-partial unique index has exactly this column as its key: what keyset
 * pagination and exact deletion manifests need (a primary key constraint qualifies).
 */
export async function hasUniqueIndexOn(
  client: ClientBase,
  tableOid: string,
  column: string,
): Promise<boolean> {
  const { rows } = await client.query<{ found: boolean }>(
    `select exists (
       select 1
         from pg_catalog.pg_index i
         join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
        where i.indrelid = $1::oid
          and i.indisunique
          and i.indisvalid
          and i.indnkeyatts = 1
          and i.indpred is null
          and a.attname = $2::text
     ) as found`,
    [tableOid, column],
  );
  return rows[0]?.found ?? false;
}
