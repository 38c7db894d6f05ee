import { activityInfo, cancellationSignal, getClient, heartbeat, log } from '@temporalio/activity';
import { findTable } from '../src/config';
import { stopwatch } from '../src/metrics';
import { qualifiedName } from '../src/postgres/identifiers';
import { LockSession, lockSessionName } from '../src/postgres/lock-session';
import { notifyRelease } from '../src/postgres/sql/table-lock';
import type {
  HoldTableLockInput,
  HoldTableLockResult,
  LockHolder,
} from '../src/shared/archive-types';
import { LOCK_GRANTED_SIGNAL } from '../src/shared/run-types';
import type { ResolvedTableRef } from '../src/shared/table-ref';
import type { ActivityDeps } from './deps';

export function lockActivities(deps: ActivityDeps) {
  return {
    /**
     * Holds the table's lock on a dedicated session (src/postgres/lock-session.ts) for as
     * long as the workflow keeps this activity running, heartbeating all along; tells the
     * workflow by signal once held. Returns at once, naming the holder, if another run's
     * session holds it. A session of this run's own that an abandoned attempt left behind is
     * ended. The session's lease frees the table within `lock_lease_seconds` whatever
     * happens to the holder. Heartbeats only while the lock is held: its heartbeat says so.
     */
    async holdTableLock(input: HoldTableLockInput): Promise<HoldTableLockResult> {
      const table = findTable(deps.config, input.table);
      const info = activityInfo();
      const elapsed = stopwatch();
      const name = qualifiedName(table.schema, table.name);
      const session = await LockSession.open(
        table.database,
        deps.env,
        lockSessionName(input.owner, info.workflowExecution?.workflowId ?? ''),
      );
      try {
        if (!session.leased)
          log.warn('no lock lease before PostgreSQL 14: a frozen holder keeps the table', {
            table: name,
          });
        const holder = await session.take(name, (pid) => {
          log.warn('ending this run’s own earlier lock session', { table: name, pid });
        });
        if (!('token' in holder)) {
          deps.metrics?.lockAttempt(input.table, 'busy', elapsed());
          return { acquired: false, heldBy: holder.heldBy };
        }
        deps.metrics?.lockAttempt(input.table, 'acquired', elapsed());
        if (info.workflowExecution) {
          await getClient()
            .workflow.getHandle(info.workflowExecution.workflowId, info.workflowExecution.runId)
            .signal(LOCK_GRANTED_SIGNAL, holder);
        }
        log.info('table lock held', { table: name, pid: holder.pid });
        await session.holdUntilReleased(holder, input.heartbeatMs, cancellationSignal(), () =>
          heartbeat({ pid: holder.pid }),
        );
        await session.release(name);
        return { acquired: true, released: true };
      } finally {
        await session.close();
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
