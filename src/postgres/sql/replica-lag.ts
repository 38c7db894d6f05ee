import type { ClientBase } from 'pg';

export interface DbReplicaLagRow {
  /** Null when no replica is streaming, or the role may not see replay_lag (needs pg_monitor). */
  lag_ms: number | null;
}

/** The largest replay lag of the replicas streaming from this server, in milliseconds. */
export async function replicaLag(client: ClientBase): Promise<DbReplicaLagRow> {
  const { rows } = await client.query<DbReplicaLagRow>(
    `select (max(extract(epoch from r.replay_lag)) * 1000)::float8 as lag_ms
       from pg_catalog.pg_stat_replication r`,
  );
  return rows[0] ?? { lag_ms: null };
}
