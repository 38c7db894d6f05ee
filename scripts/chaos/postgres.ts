import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { quoteIdent } from '../../src/postgres/identifiers';
import { errorText } from './util';

const run = promisify(execFile);
const BIN = process.env.CHAOS_PG_BIN ?? '/usr/lib/postgresql/15/bin';

/** The Debian `postgres` account that owns the cluster when the harness runs as root. */
function postgresAccount(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) =>
    Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

/**
 * A PostgreSQL cluster of the harness's own, in its temporary folder, on a port of its own:
 * the machine's shared server (which other test runs use) is never restarted or touched.
 * The server refuses to run as root, so as root every pg_ctl call runs as `postgres`.
 */
export class PrivatePostgres {
  private readonly data: string;
  private readonly socketDir: string;
  private readonly log: string;
  private readonly owner = postgresAccount();

  constructor(
    dir: string,
    readonly port: number,
  ) {
    this.data = path.join(dir, 'data');
    this.socketDir = dir;
    this.log = path.join(dir, 'postgres.log');
    mkdirSync(dir, { recursive: true });
    if (this.owner) chownSync(dir, this.owner.uid, this.owner.gid);
  }

  get logFile(): string {
    return this.log;
  }

  private async tool(name: string, args: string[], timeoutMs = 90_000): Promise<string> {
    const [command, argv] = this.owner
      ? ['runuser', ['-u', 'postgres', '--', path.join(BIN, name), ...args]]
      : [path.join(BIN, name), args];
    try {
      const { stdout } = await run(command, argv, { timeout: timeoutMs, encoding: 'utf8' });
      return stdout;
    } catch (err) {
      throw new Error(`${name} ${args.join(' ')} failed: ${errorText(err)} (log: ${this.log})`, {
        cause: err,
      });
    }
  }

  /** Server settings: a small, fast, disposable cluster that still logs what matters. */
  private serverOptions(): string {
    return [
      `-p ${this.port}`,
      `-k ${this.socketDir}`,
      '-c listen_addresses=127.0.0.1',
      // The harness crashes the server (pg_ctl -m immediate), never the machine: data in the
      // OS page cache survives, so skipping fsync loses nothing and saves time on 2 cores.
      '-c fsync=off',
      '-c full_page_writes=off',
      '-c max_connections=200',
      '-c shared_buffers=64MB',
      "-c log_line_prefix='%m [%p] %a '",
      '-c log_min_messages=warning',
    ].join(' ');
  }

  async init(): Promise<void> {
    if (!existsSync(path.join(BIN, 'initdb')))
      throw new Error(
        `the PostgreSQL server programs are not in ${BIN}: install postgresql-15 (apt-get install postgresql-15), or point CHAOS_PG_BIN at the bin folder of another version`,
      );
    await this.tool('initdb', [
      '-D',
      this.data,
      '-U',
      'postgres',
      '--auth=trust',
      '-E',
      'UTF8',
      '--no-sync',
      '--locale=C.UTF-8',
    ]);
    await this.start();
  }

  async start(): Promise<void> {
    await this.pgCtl('start');
  }

  /** A crash: every backend dies at once without a checkpoint, then recovery on start. */
  async crashRestart(): Promise<void> {
    await this.pgCtl('restart', '-m', 'immediate');
  }

  /** `pg_ctl ACTION` with the server's log, options, and a wait of at most 60 s. */
  private async pgCtl(action: 'start' | 'restart', ...extra: string[]): Promise<void> {
    await this.tool('pg_ctl', [
      '-D',
      this.data,
      '-l',
      this.log,
      ...extra,
      '-w',
      '-t',
      '60',
      '-o',
      this.serverOptions(),
      action,
    ]);
  }

  async stop(mode: 'fast' | 'immediate'): Promise<void> {
    await this.tool('pg_ctl', ['-D', this.data, '-m', mode, '-w', '-t', '60', 'stop']);
  }

  /** Stops the server if it runs; for teardown, synchronous so it also works on exit. */
  stopSync(): void {
    const args = ['-D', this.data, '-m', 'immediate', '-w', '-t', '30', 'stop'];
    try {
      if (this.owner)
        execFileSync('runuser', ['-u', 'postgres', '--', path.join(BIN, 'pg_ctl'), ...args], {
          stdio: 'ignore',
        });
      else execFileSync(path.join(BIN, 'pg_ctl'), args, { stdio: 'ignore' });
    } catch {
      // not running
    }
  }

  /** Connection settings for the harness's own sessions (direct, never through a proxy). */
  connection(database: string, applicationName: string): pg.ClientConfig {
    return {
      host: '127.0.0.1',
      port: this.port,
      user: 'postgres',
      database,
      application_name: applicationName,
      // The archiver's sessions print timestamps in UTC; the harness compares in the same form.
      options: '-c TimeZone=UTC',
      connectionTimeoutMillis: 5_000,
      // Never wait forever on a reply: a statement whose reply is lost fails, and the
      // application learns its outcome from pg_xact_status instead.
      query_timeout: 60_000,
    };
  }

  /** Runs `fn` on a fresh direct connection, closed afterwards. */
  async withClient<T>(database: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client(this.connection(database, 'chaos-harness'));
    client.on('error', () => undefined);
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /**
   * pg_terminate_backend of the archiver's sessions of `database` (application_name starting
   * with `audit-archiver`; `lockOnly` picks the table lock's session alone). Returns how many.
   */
  /**
   * A failover to a read-only server as the archiver sees it (`readOnly`), or back to a
   * writable one: the database's new sessions start read-only (or writable), and every open
   * session of it is cut, as the old server's would be, so that each reconnects to the "new" one.
   */
  async failOver(database: string, readOnly: boolean): Promise<number> {
    return this.withClient('postgres', async (client) => {
      await client.query(
        `alter database ${quoteIdent(database)} ${readOnly ? 'set default_transaction_read_only = on' : 'reset default_transaction_read_only'}`,
      );
      const { rows } = await client.query<{ n: number }>(
        `select count(*) filter (where pg_terminate_backend(pid))::int as n
           from pg_stat_activity
          where datname = $1 and pid <> pg_backend_pid()`,
        [database],
      );
      return rows[0]?.n ?? 0;
    });
  }

  async terminateArchiverSessions(database: string, lockOnly: boolean): Promise<number> {
    return this.withClient('postgres', async (client) => {
      const { rows } = await client.query<{ n: number }>(
        `select count(*) filter (where pg_terminate_backend(pid))::int as n
           from pg_stat_activity
          where datname = $1 and application_name like $2 and pid <> pg_backend_pid()`,
        [database, lockOnly ? 'audit-archiver lock%' : 'audit-archiver%'],
      );
      return rows[0]?.n ?? 0;
    });
  }
}
