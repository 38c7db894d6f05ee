import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { quoteIdent } from '../../src/postgres/identifiers';
import { PG } from './stack';

/**
 * A database of its own for one test file, created empty on the shared server and dropped
 * afterwards, so test files never see each other's tables.
 */
export class TestDatabase {
  readonly name = `aa_test_${randomBytes(5).toString('hex')}`;
  private pool?: pg.Pool;

  static async create(): Promise<TestDatabase> {
    const db = new TestDatabase();
    await withDatabase('postgres', (c) => c.query(`create database ${quoteIdent(db.name)}`));
    return db;
  }

  get client(): pg.Pool {
    // The archiver's sessions print timestamps in UTC; so do the tests'.
    if (!this.pool) {
      this.pool = new pg.Pool({ ...PG, database: this.name, max: 4, options: '-c TimeZone=UTC' });
      // pool.end() resolves before its idle clients' sockets have closed; the drop that
      // follows may end them first, and that error is expected, not a test failure.
      this.pool.on('error', () => undefined);
    }
    return this.pool;
  }

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params: unknown[] = [],
  ): Promise<R[]> {
    return (await this.client.query<R>(sql, params)).rows;
  }

  /** The first row of a query that returns exactly one. */
  async one<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params: unknown[] = [],
  ): Promise<R> {
    const rows = await this.query<R>(sql, params);
    if (rows.length !== 1) throw new Error(`expected one row, got ${rows.length}: ${sql}`);
    return rows[0]!;
  }

  async drop(): Promise<void> {
    await this.pool?.end();
    await withDatabase('postgres', (c) =>
      c.query(`drop database if exists ${quoteIdent(this.name)} with (force)`),
    );
  }
}

/** Runs `fn` on a fresh connection to `database` of the test server, closed afterwards. */
export async function withDatabase<T>(
  database: string,
  fn: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({ ...PG, database });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A small audit table of the usual shape, with `rows` rows spread over the last days. */
export async function createAuditTable(
  db: TestDatabase,
  options: { schema?: string; table?: string; rows?: number } = {},
): Promise<void> {
  const schema = options.schema ?? 'public';
  const table = options.table ?? 'audit_log';
  const qualified = `${quoteIdent(schema)}.${quoteIdent(table)}`;
  if (schema !== 'public') await db.query(`create schema if not exists ${quoteIdent(schema)}`);
  await db.query(
    `create table ${qualified} (
       id bigint generated always as identity primary key,
       created_at timestamptz not null,
       actor text not null,
       action text not null,
       payload jsonb
     )`,
  );
  await db.query(
    `insert into ${qualified} (created_at, actor, action, payload)
     select now() - (g % 30) * interval '1 day', 'user' || (g % 7), 'update', jsonb_build_object('n', g)
       from generate_series(1, $1::int) as g`,
    [options.rows ?? 100],
  );
}
