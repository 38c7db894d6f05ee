import { randomUUID } from 'node:crypto';
import {
  activityInfo,
  cancellationSignal,
  getClient,
  heartbeat,
  log,
  sleep,
} from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import pg from 'pg';
import { findTable } from '../src/config';
import { qualifiedName } from '../src/postgres/identifiers';
import { connectionConfig } from '../src/postgres/pool';
import {
  awaitOpenDeletes,
  endStaleHolder,
  listenForRelease,
  notifyRelease,
  ping,
  setLockLease,
  tableLockHolder,
  tryTableLock,
  unlockTable,
  type DbLockHolderRow,
} from '../src/postgres/sql/table-lock';
import type {
  HoldTableLockInput,
  HoldTableLockResult,
  LockHolder,
} from '../src/shared/archive-types';
import { StillBusyError, TableNotFoundError } from '../src/shared/errors';
import { LOCK_GRANTED_SIGNAL } from '../src/shared/run-types';
import type { ResolvedTableRef } from '../src/shared/table-ref';
import type { ActivityDeps } from './deps';

/**
 * application_name of a run's lock session: whoever finds the table locked sees whose it is
 * (the workflow id), and the run itself recognises its own session by the random end of its
 * first run id. Made of printable ASCII only (each other byte becomes '?') and at most 63
 * bytes, so that PostgreSQL stores it unchanged, whatever its version, and it compares equal.
 * (PostgreSQL itself treats a longer or non-ASCII name differently: it cuts it at a character
 * boundary first, and version 16 writes other bytes as \xNN; so it is always set as made here.)
 */
export function lockSessionName(owner: string, workflowId: string): string {
  const name = `audit-archiver lock ${owner.replace(/-/g, '').slice(-12)} ${workflowId}`;
  const bytes = Buffer.from(name, 'utf8').map((b) => (b < 32 || b > 126 ? 0x3f : b));
  return Buffer.from(bytes.subarray(0, 63)).toString('latin1');
}

export function lockActivities(deps: ActivityDeps) {
  return {
    /**
     * Holds the table's lock on a dedicated session (never a pooled one) for as long as the
     * workflow keeps this activity running, heartbeating all along; tells the workflow by
     * signal once held. Returns at once, naming the holder, if another run's session holds
     * it. A session of this run's own that an abandoned attempt left behind is ended.
     *
     * The lock goes with the session, and the session has a lease: its idle_session_timeout
     * ends it when the worker stops talking (frozen, paused, its host gone), so the table is
     * free again within `lock_lease_seconds` whatever happens to the holder.
     */
    async holdTableLock(input: HoldTableLockInput): Promise<HoldTableLockResult> {
      const table = findTable(deps.config, input.table);
      const info = activityInfo();
      const name = qualifiedName(table.schema, table.name);
      const sessionName = lockSessionName(input.owner, info.workflowExecution?.workflowId ?? '');
      const client = new pg.Client({
        ...connectionConfig(table.database, deps.env),
        application_name: sessionName,
        // A dead server or network is noticed by the client too, not only by the server.
        keepAlive: true,
        keepAliveInitialDelayMillis: 10_000,
      });
      client.on('error', () => undefined);
      await client.connect();
      try {
        if (!(await setLockLease(client, table.database.lock_lease_seconds)))
          log.warn(
            'no lock lease before PostgreSQL 14: a frozen holder keeps the table until it is ended',
            { table: name },
          );
        const row = await takeLock(client, name, sessionName);
        if (row === 'busy') {
          const holder = await tableLockHolder(client, name);
          return {
            acquired: false,
            heldBy: holder
              ? describeHolder(holder)
              : 'another session (it released the lock just now; try again)',
          };
        }
        // A delete of an earlier holder may still be open: wait for it to end before this
        // run does anything (lock_timeout bounds the wait; the workflow tries again later).
        try {
          await awaitOpenDeletes(client, name);
        } catch (err) {
          throw new StillBusyError(
            `${name}: a delete transaction of the table's previous lock holder is still open`,
            {},
            { cause: err },
          );
        }
        const holder: LockHolder = {
          pid: row.pid,
          backendStart: row.backend_start,
          token: randomUUID(),
        };
        if (info.workflowExecution) {
          await getClient()
            .workflow.getHandle(info.workflowExecution.workflowId, info.workflowExecution.runId)
            .signal(LOCK_GRANTED_SIGNAL, holder);
        }
        log.info('table lock held', { table: name, pid: holder.pid });
        await holdUntilReleased(client, holder, input.heartbeatMs);
        await unlockTable(client, name);
        return { acquired: true, released: true };
      } finally {
        await client.end().catch(() => undefined);
      }
    },

    /** Tells the session holding this run's lock to release it (see holdTableLock). */
    async releaseTableLock(input: { table: ResolvedTableRef; holder: LockHolder }): Promise<void> {
      await notifyRelease(
        deps.pools.get(input.table.database),
        input.holder.pid,
        input.holder.token,
      );
    },
  };
}

/**
 * Takes the table lock, or says `busy`. A holder that is a session of this same run (an
 * abandoned attempt's) is ended first: the workflow asks for the lock only when it does not
 * hold it, so any session by this run's name is one it has given up on.
 */
async function takeLock(
  client: pg.Client,
  name: string,
  sessionName: string,
): Promise<{ pid: number; backend_start: string } | 'busy'> {
  for (let attempt = 0; ; attempt++) {
    const row = await tryTableLock(client, name);
    if (row.acquired === null) throw new TableNotFoundError(`${name}: table does not exist`);
    if (row.acquired) return row;
    const holder = await tableLockHolder(client, name);
    if (!holder || holder.application_name !== sessionName || attempt >= 20) {
      return 'busy';
    }
    if (attempt === 0) {
      log.warn('ending this run’s own earlier lock session', { table: name, pid: holder.pid });
      await endStaleHolder(client, name, {
        pid: holder.pid,
        backendStart: holder.backend_start,
      });
    }
    await sleep(250);
  }
}

/**
 * Keeps the session (and so the lock) until the workflow releases it (a NOTIFY carrying the
 * holder's token: a NOTIFY by anyone else is ignored) or cancels this activity. A query
 * before each heartbeat proves the session is still there.
 */
async function holdUntilReleased(
  client: pg.Client,
  holder: LockHolder,
  heartbeatMs: number,
): Promise<void> {
  let released = false;
  let wake = () => undefined as void;
  let channel = '';
  client.on('notification', (msg) => {
    if (msg.channel === channel && msg.payload === holder.token) {
      released = true;
      wake();
    }
  });
  channel = await listenForRelease(client, holder.pid);
  const signal = cancellationSignal();
  while (!signal.aborted && !released) {
    await ping(client);
    heartbeat({ pid: holder.pid });
    try {
      await Promise.race([sleep(heartbeatMs), new Promise<void>((resolve) => (wake = resolve))]);
    } catch (err) {
      if (err instanceof CancelledFailure) break;
      throw err;
    }
  }
}

function describeHolder(h: DbLockHolderRow): string {
  return `${h.application_name || 'a session'} (pid ${h.pid}, ${h.usename ?? '?'}@${h.client_addr ?? 'local'}, since ${h.backend_start})`;
}
