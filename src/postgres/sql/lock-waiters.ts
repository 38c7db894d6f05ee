import type { ClientBase } from 'pg';

/** Sessions of the connected database waiting for a heavyweight lock, other than this one. */
export async function lockWaiters(client: ClientBase): Promise<number> {
  const { rows } = await client.query<{ waiters: number }>(
    `select count(*)::int as waiters
       from pg_catalog.pg_stat_activity a
      where a.datname = current_database()
        and a.wait_event_type = 'Lock'
        and a.pid <> pg_backend_pid()`,
  );
  return rows[0]?.waiters ?? 0;
}
