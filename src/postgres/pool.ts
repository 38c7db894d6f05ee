import pg from 'pg';
import { databasePassword, type DatabaseConfig, type Env } from '../config';

/**
 * Session settings for every archiver connection (CONTRACT §5): no statement may run or wait
 * for a lock long enough for production to notice.
 */
export interface SessionLimits {
  statementTimeoutMs: number;
  lockTimeoutMs: number;
  connectTimeoutMs: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  statementTimeoutMs: 30_000,
  lockTimeoutMs: 5_000,
  connectTimeoutMs: 5_000,
};

export function connectionConfig(
  db: DatabaseConfig,
  env: Env,
  limits: SessionLimits = DEFAULT_SESSION_LIMITS,
): pg.ClientConfig {
  return {
    host: db.host,
    port: db.port,
    user: db.user,
    database: db.dbname ?? db.name,
    password: databasePassword(db, env),
    ssl: db.ssl === 'disable' ? false : { rejectUnauthorized: db.ssl === 'verify-full' },
    application_name: 'audit-archiver',
    connectionTimeoutMillis: limits.connectTimeoutMs,
    statement_timeout: limits.statementTimeoutMs,
    lock_timeout: limits.lockTimeoutMs,
    idle_in_transaction_session_timeout: limits.statementTimeoutMs * 2,
  };
}

/**
 * One pool per configured database, created on first use and shared by every activity of
 * this worker process (never one per table).
 */
export class PoolRegistry {
  private readonly pools = new Map<string, pg.Pool>();

  constructor(
    private readonly databases: readonly DatabaseConfig[],
    private readonly env: Env,
    private readonly maxConnectionsPerDatabase = 4,
  ) {}

  get(database: string): pg.Pool {
    let pool = this.pools.get(database);
    if (!pool) {
      const db = this.databases.find((d) => d.name === database);
      if (!db) throw new Error(`no pool for unconfigured database "${database}"`);
      pool = new pg.Pool({
        ...connectionConfig(db, this.env),
        max: this.maxConnectionsPerDatabase,
      });
      // An idle client that loses its server must not crash the worker; the next query
      // on a fresh client reports the real problem.
      pool.on('error', () => undefined);
      this.pools.set(database, pool);
    }
    return pool;
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.allSettled(pools.map((p) => p.end()));
  }
}
