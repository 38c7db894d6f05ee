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
import { connectionConfig } from '../src/postgres/pool';
import { qualifiedName, quoteIdent } from '../src/postgres/identifiers';
import type {
  HoldTableLockInput,
  HoldTableLockResult,
  LockHolder,
} from '../src/shared/archive-types';
import { TableNotFoundError } from '../src/shared/errors';
import { LOCK_GRANTED_SIGNAL } from '../src/shared/run-types';
import type { ResolvedTableRef } from '../src/shared/table-ref';
import type { ActivityDeps } from './deps';

/**
 * First key of the archiver's two-key advisory locks ('AARC'); the second is the table's
 * oid, which PostgreSQL computes from the qualified name, so every process, host and
 * cluster agrees on the key without hashing anything itself.
 */
export const LOCK_CLASS_ID = 0x41415243;

export function lockActivities(deps: ActivityDeps) {
  return {
    /**
     * Holds the table's session advisory lock on a dedicated connection (never a pooled one)
     * for as long as the workflow keeps this activity running, heartbeating all along. Tells
     * the workflow by signal once held; returns at once, naming the holder, if another session
     * holds it. The lock goes with the session, so a holder that dies releases it by itself.
     */
    async holdTableLock(input: HoldTableLockInput): Promise<HoldTableLockResult> {
      const table = findTable(deps.config, input.table);
      const info = activityInfo();
      const workflowId = info.workflowExecution?.workflowId ?? 'unknown';
      const client = new pg.Client({
        ...connectionConfig(table.database, deps.env),
        // Shown to whoever finds the table locked: say who holds it.
        application_name: `audit-archiver lock ${workflowId}`.slice(0, 63),
      });
      client.on('error', () => undefined);
      await client.connect();
      try {
        const name = qualifiedName(table.schema, table.name);
        const { rows } = await client.query<{
          acquired: boolean | null;
          pid: number;
          backend_start: string;
        }>(
          `select pg_try_advisory_lock($1::int, to_regclass($2::text)::oid::int4) as acquired,
                  pg_backend_pid() as pid,
                  (select backend_start::text from pg_stat_activity where pid = pg_backend_pid()) as backend_start`,
          [LOCK_CLASS_ID, name],
        );
        const row = rows[0]!;
        if (row.acquired === null) {
          throw new TableNotFoundError(`${table.database.name}: ${name}: table does not exist`);
        }
        if (!row.acquired) return { acquired: false, heldBy: await describeHolder(client, name) };

        const holder: LockHolder = { pid: row.pid, backendStart: row.backend_start };
        if (info.workflowExecution) {
          await getClient()
            .workflow.getHandle(info.workflowExecution.workflowId, info.workflowExecution.runId)
            .signal(LOCK_GRANTED_SIGNAL, holder);
        }
        log.info('table lock held', { table: name, pid: holder.pid });
        // The workflow releases the lock with a NOTIFY on this channel (releaseTableLock): at
        // once, where a cancellation would only arrive with a throttled heartbeat.
        let released = false;
        let wake = () => undefined as void;
        client.on('notification', (msg) => {
          if (msg.channel === releaseChannel(holder)) {
            released = true;
            wake();
          }
        });
        await client.query(`listen ${quoteIdent(releaseChannel(holder))}`);
        const signal = cancellationSignal();
        while (!signal.aborted && !released) {
          // A query proves the session (and so the lock) is still there before each heartbeat.
          await client.query('select 1');
          heartbeat({ pid: holder.pid });
          try {
            await Promise.race([
              sleep(input.heartbeatMs),
              new Promise<void>((resolve) => (wake = resolve)),
            ]);
          } catch (err) {
            if (err instanceof CancelledFailure) break;
            throw err;
          }
        }
        await client.query('select pg_advisory_unlock($1::int, to_regclass($2::text)::oid::int4)', [
          LOCK_CLASS_ID,
          name,
        ]);
        return { acquired: true, released: true };
      } finally {
        await client.end().catch(() => undefined);
      }
    },

    /** Tells the session holding this run's lock to release it (see holdTableLock). */
    async releaseTableLock(input: { table: ResolvedTableRef; holder: LockHolder }): Promise<void> {
      await deps.pools
        .get(input.table.database)
        .query('select pg_notify($1::text, $2::text)', [
          releaseChannel(input.holder),
          input.holder.backendStart,
        ]);
    },
  };
}

/** The channel on which a lock holder session waits to be told to release the lock. */
function releaseChannel(holder: LockHolder): string {
  return `audit_archiver_release_${holder.pid}`;
}

async function describeHolder(client: pg.Client, name: string): Promise<string> {
  const { rows } = await client.query<{ holder: string }>(
    `select coalesce(nullif(a.application_name, ''), 'a session') || ' (pid ' || a.pid || ', ' ||
            coalesce(a.usename::text, '?') || '@' || coalesce(host(a.client_addr), 'local') ||
            ', since ' || a.backend_start::text || ')' as holder
       from pg_catalog.pg_locks l
       join pg_catalog.pg_stat_activity a on a.pid = l.pid
      where l.locktype = 'advisory' and l.granted and l.objsubid = 2
        and l.classid = $1::int::oid and l.objid = to_regclass($2::text)::oid
      limit 1`,
    [LOCK_CLASS_ID, name],
  );
  return rows[0]?.holder ?? 'another session (it released the lock just now; try again)';
}
