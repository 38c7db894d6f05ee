import { randomUUID } from 'node:crypto';
import {
  activityInfo,
  cancellationSignal,
  getClient,
  heartbeat,
  sleep,
} from '@temporalio/activity';
import type { WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Activities } from '../../activities';
import type {
  ArchiveTableOutcome,
  ExportBatchInput,
  ExportBatchResult,
  LockHolder,
} from '../../src/shared/archive-types';
import { LOCK_GRANTED_SIGNAL } from '../../src/shared/run-types';
import type { ThrottleReading } from '../../src/shared/throttle';
import type { ArchiveTable } from '../../workflows';
import { withInMemoryActivities } from './worker';

/** Throttle readings of a database with no load and no limits set. */
export const QUIET: ThrottleReading = {
  limits: {
    maxReplicaLagMs: null,
    maxWalReadyFiles: null,
    pauseDuringVacuum: false,
    maxLockWaiters: null,
    maxSlowdown: null,
    maxRowsPerSecond: null,
    maxBytesPerSecond: null,
    niceRatio: 0,
    pauseMs: 10,
    maxPauseMs: 10,
    targetBatchMs: null,
    minBatchSize: 1,
  },
  signals: {
    replicaLagMs: null,
    walReadyFiles: null,
    walArchiverFailing: false,
    vacuumRunning: false,
    lockWaiters: 0,
  },
};

export type Fake = Partial<Activities> & { calls: Record<string, number> };

/**
 * The activities of one table with `batches` batches to archive, in memory: a lock that is
 * granted (by the same signal the real lock activity sends) and held until cancelled, and
 * each batch step succeeding unless `overrides` says otherwise.
 */
export function fakeTable(batches: number, overrides: Partial<Activities> = {}): Fake {
  const calls: Record<string, number> = {};
  const count = (name: string) => (calls[name] = (calls[name] ?? 0) + 1);
  // Released as the real lock is: at once, by releaseTableLock (a cancellation alone would
  // arrive only with the next heartbeat, seconds later).
  let released = () => undefined as void;
  const holdTableLock: Activities['holdTableLock'] = async () => {
    count('holdTableLock');
    const info = activityInfo();
    const holder: LockHolder = { pid: calls.holdTableLock!, backendStart: 'now', token: 't' };
    await getClient()
      .workflow.getHandle(info.workflowExecution!.workflowId, info.workflowExecution!.runId)
      .signal(LOCK_GRANTED_SIGNAL, holder);
    const signal = cancellationSignal();
    let done = false;
    released = () => (done = true);
    while (!signal.aborted && !done) {
      heartbeat();
      await sleep(100).catch(() => undefined);
    }
    return { acquired: true, released: true };
  };
  const exportBatch = (input: ExportBatchInput): Promise<ExportBatchResult> => {
    count('exportBatch');
    const last = String(input.batch * 10 + 9);
    return Promise.resolve({
      kind: 'batch',
      object: `o/${input.batch}.jsonl.gz`,
      day: '2020-01-01',
      rowCount: 10,
      bytes: 100,
      firstKey: String(input.batch * 10),
      lastKey: last,
      maxTimestamp: '2020-01-01 00:00:00+00',
      maxTimestampMicros: '1577836800000000',
      next: { day: '2020-01-01', afterKey: last },
      following: input.batch < batches ? { day: '2020-01-01', afterKey: last } : null,
    });
  };
  return {
    calls,
    planTable: (table) => {
      count('planTable');
      return Promise.resolve({
        table: { schema: 'public', ...table },
        retentionDays: 7,
        batchSize: 10,
        pauseBetweenBatchesMs: 0,
      });
    },
    holdTableLock,
    releaseTableLock: () => {
      released();
      return Promise.resolve();
    },
    surveyTable: () => Promise.resolve({ holds: [], skipped: { nullKey: 0, outOfRange: 0 } }),
    findBatch: (input) => {
      count('findBatch');
      const afterKey = input.cursor.afterKey;
      const done = batches === 0 || (afterKey !== null && Number(afterKey) >= batches * 10 + 9);
      return Promise.resolve(done ? null : { day: '2020-01-01', afterKey });
    },
    snapshotSchema: (table) =>
      Promise.resolve({
        database: table.database,
        schema: 'public',
        table: table.table,
        schemaHash: 'h',
        columnCount: 1,
        primaryKey: ['id'],
        bucket: 'b',
        key: 'k',
        created: true,
        previousSchemaHash: null,
      }),
    readThrottleSignals: () => Promise.resolve(QUIET),
    // No notification channels: a run's end plans no message.
    planNotifications: () => Promise.resolve({ deliveries: [] }),
    exportBatch,
    verifyBatch: () => {
      count('verifyBatch');
      return Promise.resolve({ rowCount: 10, sha256: 's' });
    },
    deleteBatch: () => {
      count('deleteBatch');
      return Promise.resolve({
        listed: 10,
        deleted: 10,
        changed: 0,
        alreadyGone: 0,
        reading: QUIET,
      });
    },
    ...overrides,
  };
}

/**
 * A table of `batches` batches whose lock's first holder signals its grant and then dies with
 * its worker; every later take is the table's own lock. `holds` counts the takes.
 */
export function lockHolderDiesOnce(batches: number): Fake & { holds: () => number } {
  let holds = 0;
  const fake = fakeTable(batches);
  const table = fakeTable(batches, {
    holdTableLock: async (input) => {
      if (++holds > 1) return fake.holdTableLock!(input);
      const info = activityInfo();
      await getClient()
        .workflow.getHandle(info.workflowExecution!.workflowId, info.workflowExecution!.runId)
        .signal(LOCK_GRANTED_SIGNAL, { pid: 1, backendStart: 'then', token: 't' });
      await sleep(300);
      throw new Error('worker lost');
    },
  });
  return Object.assign(table, { holds: () => holds });
}

/** A table of `batches` batches whose exports take `ms` each, counted in `exports()`. */
export function slowExports(batches: number, ms: number): Fake & { exports: () => number } {
  let exports = 0;
  const fake = fakeTable(batches);
  const table = fakeTable(batches, {
    exportBatch: async (input) => {
      exports++;
      await sleep(ms);
      return fake.exportBatch!(input);
    },
  });
  return Object.assign(table, { exports: () => exports });
}

/** Cancels the run once `table` has started `exports` exports. */
export function cancelAfterExports(
  table: { exports: () => number },
  exports: number,
): (handle: WorkflowHandle<typeof ArchiveTable>) => Promise<void> {
  return async (handle) => {
    while (table.exports() < exports) await new Promise((r) => setTimeout(r, 50));
    await handle.cancel();
  };
}

/**
 * Runs ArchiveTable over the table `app.audit_log` with `activities` in memory, on the
 * environment's server; `watch` is given the run while it goes. Its outcome, or the error it
 * ended with.
 */
export async function runArchiveTable(
  env: TestWorkflowEnvironment,
  activities: Partial<Activities>,
  options: {
    workflowId?: string;
    watch?: (handle: WorkflowHandleWithFirstExecutionRunId<typeof ArchiveTable>) => Promise<void>;
  } = {},
): Promise<ArchiveTableOutcome | Error> {
  return withInMemoryActivities(env, activities, async (taskQueue) => {
    const handle = await env.client.workflow.start<typeof ArchiveTable>('ArchiveTable', {
      taskQueue,
      workflowId: options.workflowId ?? `test-archive-${randomUUID()}`,
      args: [{ database: 'app', table: 'audit_log' }],
    });
    const result = handle.result().catch((err: Error) => err);
    await options.watch?.(handle);
    return result;
  });
}
