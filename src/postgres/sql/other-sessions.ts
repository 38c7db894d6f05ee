import type { ClientBase } from 'pg';
import { APPLICATION_NAME } from '../pool';

/**
 * The connected database's other sessions, other than this one: how many wait for a
 * heavyweight lock, and how many client sessions run a statement now, not counting the
 * archiver's own (its pools and lock sessions name themselves `audit-archiver...`).
 */
export async function otherSessions(
  client: ClientBase,
): Promise<{ lockWaiters: number; activeSessions: number }> {
  const { rows } = await client.query<{ lock_waiters: number; active_sessions: number }>(
    `select count(*) filter (where a.wait_event_type = 'Lock')::int as lock_waiters,
            count(*) filter (
              where a.state = 'active'
                and a.backend_type = 'client backend'
                and coalesce(a.application_name, '') not like $1
            )::int as active_sessions
       from pg_catalog.pg_stat_activity a
      where a.datname = current_database()
        and a.pid <> pg_backend_pid()`,
    [`${APPLICATION_NAME}%`],
  );
  return {
    lockWaiters: rows[0]?.lock_waiters ?? 0,
    activeSessions: rows[0]?.active_sessions ?? 0,
  };
}
