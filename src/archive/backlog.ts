import type { PoolClient } from 'pg';
import { quoteLiteral } from '../postgres/literals';
import { ARCHIVABLE_FROM, type TableSql } from './table-sql';

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

/** Rows the archive may take: dated from ARCHIVABLE_FROM on, with a key (see TableSql). */
const archivable = (sql: TableSql) =>
  `t.${sql.ts} >= ${sql.instant(quoteLiteral(ARCHIVABLE_FROM))} and t.${sql.pk} is not null`;

/**
 * The oldest archivable row's time, in unix seconds (sessions run in UTC, so a `timestamp`
 * or `date` column reads as UTC, as the export reads it). One probe of the timestamp
 * column's index where it has one: the same search the run's own next-day query does.
 */
function oldestSql(sql: TableSql): string {
  return `select extract(epoch from min(t.${sql.ts}))::float8 as oldest_epoch
            from ${sql.table} as t
           where ${archivable(sql)}`;
}

/**
 * The table's backlog against the cutoff ($1): the rows past retention are counted (a range
 * of the timestamp index: the rows the run is about to read anyway), and the oldest
 * archivable row found. Read once per run, when it starts.
 */
export async function readBacklog(
  client: PoolClient,
  sql: TableSql,
  cutoff: string,
): Promise<Backlog> {
  const { rows } = await client.query<DbBacklogRow>(
    `select (select count(*) from ${sql.table} as t
              where t.${sql.ts} < ${sql.instant('$1')}
                and ${archivable(sql)})::bigint::text as rows_past_retention,
            (${oldestSql(sql)}) as oldest_epoch`,
    [cutoff],
  );
  return {
    rowsPastRetention: Number(rows[0]!.rows_past_retention),
    oldestEpoch: rows[0]!.oldest_epoch,
  };
}

/** The oldest archivable row's time (unix seconds), or null: read after each batch's delete. */
export async function readOldestRow(client: PoolClient, sql: TableSql): Promise<number | null> {
  const { rows } = await client.query<DbOldestRow>(oldestSql(sql));
  return rows[0]!.oldest_epoch;
}
