import type { PoolClient } from 'pg';
import type { TableSql } from './table-sql';

/** The backlog of a table as its metrics show it (src/metrics.ts). */
export interface Backlog {
  /** Rows older than the cutoff that the archive may take. */
  rowsPastRetention: number;
  /** Unix seconds of the oldest row the archive may take, whatever its age; null if none. */
  oldestEpoch: number | null;
}

interface DbBacklogRow {
  rows_past_retention: string;
  oldest_epoch: number | null;
}

interface DbOldestRow {
  oldest_epoch: number | null;
}

/**
 * The table's backlog against the cutoff: the rows past retention counted (a range of the
 * timestamp column's index: the rows the run is about to read anyway), and the oldest
 * archivable row found (one probe of that index, the same search the run's next-day query
 * does). Read once per run, when it starts.
 */
export async function readBacklog(
  client: PoolClient,
  sql: TableSql,
  cutoff: string,
): Promise<Backlog> {
  const { rows } = await client.query<DbBacklogRow>(sql.backlog(), [cutoff]);
  return {
    rowsPastRetention: Number(rows[0]!.rows_past_retention),
    oldestEpoch: rows[0]!.oldest_epoch,
  };
}

/** The oldest archivable row's time (unix seconds), or null: read after each batch's delete. */
export async function readOldestRow(client: PoolClient, sql: TableSql): Promise<number | null> {
  const { rows } = await client.query<DbOldestRow>(sql.oldestRowEpoch());
  return rows[0]!.oldest_epoch;
}
