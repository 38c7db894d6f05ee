import { sleep } from '@temporalio/activity';
import { findTable, type Config } from '../src/config';
import { readDatabaseSignals } from '../src/postgres/signals';
import type {
  ReadThrottleSignalsInput,
  ThrottleLimits,
  ThrottleReading,
} from '../src/shared/throttle';
import type { ResolvedTableRef } from '../src/shared/table-ref';
import type { ActivityDeps } from './deps';
import { withClient } from './context';

/** The throttling limits of a database: defaults.throttle with the database's overrides. */
export function throttleLimits(config: Config, database: string): ThrottleLimits {
  const own = config.databases.find((d) => d.name === database)?.throttle ?? {};
  const t = { ...config.defaults.throttle, ...own };
  return {
    maxReplicaLagMs: t.max_replica_lag_ms,
    maxWalReadyFiles: t.max_wal_ready_files,
    pauseDuringVacuum: t.pause_during_vacuum,
    maxLockWaiters: t.max_lock_waiters,
    maxSlowdown: t.max_slowdown,
    maxRowsPerSecond: t.max_rows_per_second,
    maxBytesPerSecond: t.max_bytes_per_second,
    niceRatio: t.nice_ratio,
    maxProbeSlowdown: t.max_probe_slowdown,
    maxActiveSessions: t.max_active_sessions,
    maxRestRatio: t.max_rest_ratio,
    pauseMs: t.pause_ms,
    maxPauseMs: Math.max(t.max_pause_ms, t.pause_ms),
    targetBatchMs: t.target_batch_ms,
    minBatchSize: t.min_batch_size,
  };
}

/** The database's load signals now, with its limits. Reads only. */
export async function readThrottle(
  deps: ActivityDeps,
  ref: ResolvedTableRef,
): Promise<ThrottleReading> {
  const table = findTable(deps.config, ref);
  const read = deps.readSignals ?? readDatabaseSignals;
  const signals = await withClient(deps, ref.database, (client) => read(client, table));
  const probeMs = await deps.pools.probe(ref.database);
  return { limits: throttleLimits(deps.config, ref.database), signals: { ...signals, probeMs } };
}

export function throttleActivities(deps: ActivityDeps) {
  return {
    /**
     * Reads the database's load signals that throttling decides on, with the database's
     * limits; the decision itself is the workflow's (src/shared/throttle.ts). Reads only.
     */
    async readThrottleSignals(input: ReadThrottleSignalsInput): Promise<ThrottleReading> {
      if (input.waitMs) await sleep(input.waitMs);
      return readThrottle(deps, input.table);
    },
  };
}
