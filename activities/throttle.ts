import { readFileSync } from 'node:fs';
import { log, sleep } from '@temporalio/activity';
import { findTable, type Config, type Env } from '../src/config';
import { lockWaiters } from '../src/postgres/sql/lock-waiters';
import { replicaLag } from '../src/postgres/sql/replica-lag';
import { vacuumRunning } from '../src/postgres/sql/vacuum-progress';
import { walArchiveBacklog } from '../src/postgres/sql/wal-archive-backlog';
import type {
  ReadThrottleSignalsInput,
  ThrottleLimits,
  ThrottleReading,
  ThrottleSignals,
} from '../src/shared/throttle';
import type { ActivityDeps } from './deps';
import { withClient } from './context';

/**
 * Test-only hook: when this variable names a JSON file, its keys (a partial ThrottleSignals)
 * replace what the database said. Replica lag, a WAL archive backlog and autovacuum cannot be
 * produced on demand on a single test server; the integration tests use this to prove that
 * each one pauses the archive. Never set it in production: every injected reading is logged
 * as a warning and marked `injected` in the result.
 */
export const TEST_SIGNALS_ENV = 'AUDIT_ARCHIVER_TEST_SIGNALS';

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
    pauseMs: t.pause_ms,
    maxPauseMs: Math.max(t.max_pause_ms, t.pause_ms),
    targetBatchMs: t.target_batch_ms,
    minBatchSize: t.min_batch_size,
  };
}

function injectedSignals(env: Env): Partial<ThrottleSignals> | undefined {
  const file = env[TEST_SIGNALS_ENV];
  if (!file) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as Partial<ThrottleSignals>;
}

export function throttleActivities(deps: ActivityDeps) {
  return {
    /**
     * Reads the database's load signals that throttling decides on, with the database's
     * limits; the decision itself is the workflow's (src/shared/throttle.ts). Reads only.
     */
    async readThrottleSignals(input: ReadThrottleSignalsInput): Promise<ThrottleReading> {
      const table = findTable(deps.config, input.table);
      if (input.waitMs) await sleep(input.waitMs);
      const signals = await withClient(
        deps,
        input.table.database,
        async (client): Promise<ThrottleSignals> => {
          const lag = await replicaLag(client);
          const wal = await walArchiveBacklog(client);
          return {
            replicaLagMs: lag.lag_ms === null ? null : Math.round(lag.lag_ms),
            walReadyFiles: wal.ready_files,
            walArchiverFailing: wal.failing,
            vacuumRunning: await vacuumRunning(client, table.schema, table.name),
            lockWaiters: await lockWaiters(client),
            injected: false,
          };
        },
      );
      const injected = injectedSignals(deps.env);
      if (injected) {
        log.warn('throttle signals injected by the test hook', { [TEST_SIGNALS_ENV]: injected });
        Object.assign(signals, injected, { injected: true });
      }
      return { limits: throttleLimits(deps.config, input.table.database), signals };
    },
  };
}
