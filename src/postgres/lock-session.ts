import { randomUUID } from 'node:crypto';
import { setTimeout as wait } from 'node:timers/promises';
import pg from 'pg';
import type { DatabaseConfig, Env } from '../config';
import type { LockHolder } from '../shared/archive-types';
import { StillBusyError, TableNotFoundError } from '../shared/errors';
import { APPLICATION_NAME, connectionConfig } from './pool';
import {
  awaitOpenDeletes,
  endStaleHolder,
  listenForRelease,
  ping,
  setLockLease,
  tableLockHolder,
  tryTableLock,
  unlockTable,
  type DbLockHolderRow,
} from './sql/table-lock';

/**
 * application_name of a run's lock session: whoever finds the table locked sees whose it is
 * (the workflow id), and the run itself recognises its own session by the random end of its
 * first run id. Made of printable ASCII only (each other byte becomes '?') and at most 63
 * bytes, so that PostgreSQL stores it unchanged, whatever its version, and it compares equal.
 * (PostgreSQL itself treats a longer or non-ASCII name differently: it cuts it at a character
 * boundary first, and version 16 writes other bytes as \xNN; so it is always set as made here.)
 */
export function lockSessionName(owner: string, workflowId: string): string {
  const name = `${APPLICATION_NAME} lock ${owner.replace(/-/g, '').slice(-12)} ${workflowId}`;
  const bytes = Buffer.from(name, 'utf8').map((b) => (b < 32 || b > 126 ? 0x3f : b));
  return Buffer.from(bytes.subarray(0, 63)).toString('latin1');
}

/**
 * The dedicated session that holds a table's lock for a run (the lock goes with the
 * session, so never a pooled one). Its lease (idle_session_timeout = lock_lease_seconds)
 * ends it when its holder stops talking: frozen, paused, its host gone.
 */
export class LockSession {
  /** False on PostgreSQL before 14, which has no idle_session_timeout. */
  leased = false;

  private constructor(
    private readonly client: pg.Client,
    private readonly name: string,
  ) {}

  static async open(db: DatabaseConfig, env: Env, name: string): Promise<LockSession> {
    const client = new pg.Client({
      ...connectionConfig(db, env),
      application_name: name,
      // A dead server or network is noticed by the client too, not only by the server.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    client.on('error', () => undefined);
    await client.connect();
    const session = new LockSession(client, name);
    try {
      session.leased = await setLockLease(client, db.lock_lease_seconds);
    } catch (err) {
      await session.close();
      throw err;
    }
    return session;
  }

  /**
   * Takes the lock of `table` (its qualified name), or names the session that holds it. A
   * holder that is a session of this same run (an abandoned attempt's: the workflow asks for
   * the lock only when it does not hold it) is ended first. Once taken, waits for any delete
   * of an earlier holder still open (bounded by lock_timeout).
   */
  async take(
    table: string,
    endingOwn: (pid: number) => void = () => undefined,
  ): Promise<LockHolder | { heldBy: string }> {
    const row = await this.takeOrEndOwn(table, endingOwn);
    if (row === 'busy') {
      const holder = await tableLockHolder(this.client, table);
      return {
        heldBy: holder
          ? describeHolder(holder)
          : 'another session (it released the lock just now; try again)',
      };
    }
    try {
      await awaitOpenDeletes(this.client, table);
    } catch (err) {
      throw new StillBusyError(
        `${table}: a delete transaction of the table's previous lock holder is still open`,
        {},
        { cause: err },
      );
    }
    return { pid: row.pid, backendStart: row.backend_start, token: randomUUID() };
  }

  /**
   * Keeps the session (and so the lock) until its holder's token arrives on its release
   * channel (a NOTIFY by anyone else is ignored) or `signal` aborts, proving with a query
   * every `everyMs` that the session is still there and calling `beat` after each.
   */
  async holdUntilReleased(
    holder: LockHolder,
    everyMs: number,
    signal: AbortSignal,
    beat: () => void,
  ): Promise<void> {
    const released = new AbortController();
    let channel = '';
    this.client.on('notification', (msg) => {
      if (msg.channel === channel && msg.payload === holder.token) released.abort();
    });
    channel = await listenForRelease(this.client, holder.pid);
    const stop = AbortSignal.any([signal, released.signal]);
    while (!stop.aborted) {
      await ping(this.client);
      beat();
      await wait(everyMs, undefined, { signal: stop }).catch(() => undefined);
    }
  }

  async release(table: string): Promise<void> {
    await unlockTable(this.client, table);
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }

  private async takeOrEndOwn(
    table: string,
    endingOwn: (pid: number) => void,
  ): Promise<{ pid: number; backend_start: string } | 'busy'> {
    for (let attempt = 0; ; attempt++) {
      const row = await tryTableLock(this.client, table);
      if (row.acquired === null) throw new TableNotFoundError(`${table}: table does not exist`);
      if (row.acquired) return row;
      const holder = await tableLockHolder(this.client, table);
      if (!holder || holder.application_name !== this.name || attempt >= 20) return 'busy';
      if (attempt === 0) {
        endingOwn(holder.pid);
        await endStaleHolder(this.client, table, {
          pid: holder.pid,
          backendStart: holder.backend_start,
        });
      }
      await wait(250);
    }
  }
}

function describeHolder(h: DbLockHolderRow): string {
  return `${h.application_name || 'a session'} (pid ${h.pid}, ${h.usename ?? '?'}@${h.client_addr ?? 'local'}, since ${h.backend_start})`;
}
