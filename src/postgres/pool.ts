import pg from 'pg';
import { LatencyProbe } from './latency-probe';
import { databasePassword, type DatabaseConfig, type Env } from '../config';

/**
 * Session settings for every archiver connection (docs/performance-tuning.md): no statement may run or wait
 * for a lock long enough for production to notice.
 */
export interface SessionLimits {
  statementTimeoutMs: number;
  lockTimeoutMs: number;
  connectTimeoutMs: number;
}

/** How the archiver's sessions name themselves (lock sessions add who they are for). */
export const APPLICATION_NAME = 'audit-archiver';

/**
 * The session settings that fix how PostgreSQL prints values as text. The archive stores
 * every value in its text form, and the delete step recomputes each row's fingerprint from
 * that form, so both must see the same settings, whatever the server's defaults are.
 */
export const TEXT_FORM_SETTINGS: Readonly<Record<string, string>> = {
  TimeZone: 'UTC',
  DateStyle: 'ISO,YMD',
  IntervalStyle: 'postgres',
  extra_float_digits: '1',
  bytea_output: 'hex',
  standard_conforming_strings: 'on',
};

export function connectionConfig(
  db: DatabaseConfig,
  env: Env,
  limits: Partial<SessionLimits> = {},
): pg.ClientConfig {
  const statementTimeoutMs = limits.statementTimeoutMs ?? db.statement_timeout_ms;
  return {
    host: db.host,
    port: db.port,
    user: db.user,
    database: db.dbname ?? db.name,
    password: databasePassword(db, env),
    ssl: db.ssl === 'disable' ? false : { rejectUnauthorized: db.ssl === 'verify-full' },
    application_name: APPLICATION_NAME,
    options: Object.entries(TEXT_FORM_SETTINGS)
      .map(([name, value]) => `-c ${name}=${value}`)
      .join(' '),
    connectionTimeoutMillis: limits.connectTimeoutMs ?? 5_000,
    statement_timeout: statementTimeoutMs,
    lock_timeout: limits.lockTimeoutMs ?? db.lock_timeout_ms,
    idle_in_transaction_session_timeout: statementTimeoutMs * 2,
  };
}

/**
 * One pool per configured database, created on first use and shared by every activity of
 * this worker process (never one per table).
 */
export class PoolRegistry {
  private readonly pools = new Map<string, pg.Pool>();
  private readonly latency = new LatencyProbe();

  constructor(
    private readonly databases: readonly DatabaseConfig[],
    private readonly env: Env,
    private readonly maxConnectionsPerDatabase = 4,
  ) {}

  get(database: string): pg.Pool {
    let pool = this.pools.get(database);
    if (!pool) {
      pool = new pg.Pool({
        ...connectionConfig(this.configOf(database), this.env),
        max: this.maxConnectionsPerDatabase,
      });
      // An idle client that loses its server must not crash the worker; the next query
      // on a fresh client reports the real problem.
      pool.on('error', () => undefined);
      this.pools.set(database, pool);
    }
    return pool;
  }

  /** The database's round-trip latency now, on a session of its own (LatencyProbe). */
  probe(database: string): Promise<number | null> {
    return this.latency.probe(database, connectionConfig(this.configOf(database), this.env));
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.allSettled([...pools.map((p) => p.end()), this.latency.close()]);
  }

  private configOf(database: string): DatabaseConfig {
    const db = this.databases.find((d) => d.name === database);
    if (!db) throw new Error(`no pool for unconfigured database "${database}"`);
    return db;
  }
}
