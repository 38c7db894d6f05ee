import type { ClientBase } from 'pg';
import { APPLICATION_NAME } from '../pool';

/**
 * Sessions of the connected database running a statement now, other than this one and the
 * archiver's own (its pools and lock sessions name themselves `audit-archiver...`).
 */
export async function activeSessions(client: ClientBase): Promise<number> {
  const { rows } = await client.query<{ active: number }>(
    `select count(*)::int as active
       from pg_catalog.pg_stat_activity a
      where a.datname = current_database()
        and a.state = 'active'
        and a.pid <> pg_backend_pid()
        and a.backend_type = 'client backend'
        and coalesce(a.application_name, '') not like $1`,
    [`${APPLICATION_NAME}%`],
  );
  return rows[0]?.active ?? 0;
}
