import { DatabaseError, type ClientBase } from 'pg';

export interface DbWalArchiveBacklogRow {
  /** `.ready` files in pg_wal/archive_status; null when the role may not list the directory. */
  ready_files: number | null;
  /** pg_stat_archiver's last failure is newer than its last success. */
  failing: boolean;
}

// SQLSTATE 42501 insufficient_privilege: pg_ls_archive_statusdir() needs superuser or
// pg_monitor; without it the archiver's failure state still says whether WAL piles up.
const INSUFFICIENT_PRIVILEGE = '42501';

/** WAL segments waiting for archive_command, and whether archiving currently fails. */
export async function walArchiveBacklog(client: ClientBase): Promise<DbWalArchiveBacklogRow> {
  const { rows: archiver } = await client.query<{ failing: boolean }>(
    `select coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'::timestamptz),
                     false) as failing
       from pg_catalog.pg_stat_archiver`,
  );
  let readyFiles: number | null = null;
  try {
    const { rows } = await client.query<{ ready_files: number }>(
      `select count(*)::int as ready_files
         from pg_catalog.pg_ls_archive_statusdir()
        where name like '%.ready'`,
    );
    readyFiles = rows[0]?.ready_files ?? 0;
  } catch (err) {
    if (!(err instanceof DatabaseError && err.code === INSUFFICIENT_PRIVILEGE)) throw err;
  }
  return { ready_files: readyFiles, failing: archiver[0]?.failing ?? false };
}
