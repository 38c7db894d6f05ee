import type { ClientBase } from 'pg';

/** Whether a vacuum (autovacuum or manual) is working on the table right now. */
export async function vacuumRunning(
  client: ClientBase,
  schema: string,
  table: string,
): Promise<boolean> {
  const { rows } = await client.query<{ running: boolean }>(
    `select exists (
       select 1
         from pg_catalog.pg_stat_progress_vacuum p
         join pg_catalog.pg_class c on c.oid = p.relid
         join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where n.nspname = $1::text
          and c.relname = $2::text
     ) as running`,
    [schema, table],
  );
  return rows[0]?.running ?? false;
}
