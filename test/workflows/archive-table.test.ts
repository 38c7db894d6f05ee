import assert from 'node:assert/strict';
import {
  WorkflowFailedError,
  type WorkflowHandle,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { ArchiveProgress } from '../../src/shared/archive-types';
import type { ArchiveTable } from '../../workflows';
import {
  cancelAfterExports,
  fakeTable,
  lockHolderDiesOnce,
  QUIET,
  runArchiveTable,
  slowExports,
  type Fake,
} from '../helpers/fake-table';
import { existingServerForSuite } from '../helpers/worker';

/** The run's progress the first time it is in `state`, polled every 100 ms for `withinMs`. */
async function progressIn(
  handle: WorkflowHandle<typeof ArchiveTable>,
  state: ArchiveProgress['state'],
  withinMs: number,
): Promise<ArchiveProgress | undefined> {
  for (const until = Date.now() + withinMs; Date.now() < until;) {
    const progress = await handle.query<ArchiveProgress>('progress').catch(() => undefined);
    if (progress?.state === state) return progress;
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}

// ArchiveTable's own logic on the real Temporal server, with its activities in memory: how it
// waits out faults, fails on the ones no retry can fix, and keeps to its lock. No PostgreSQL
// or MinIO.
describe('ArchiveTable workflow (activities in memory, real Temporal server)', function () {
  this.timeout(120_000);
  const env = existingServerForSuite();

  const run = (
    activities: Fake,
    watch?: (handle: WorkflowHandleWithFirstExecutionRunId<typeof ArchiveTable>) => Promise<void>,
  ) => runArchiveTable(env(), activities, { watch });

  it('waits out a fault that outlasts every activity retry, says so in its progress, and then completes', async () => {
    // The store is down for 12 attempts: more than the activity's own retries (and more
    // than the 10 the archiver once gave up after, failing the run between export and delete).
    let attempts = 0;
    let sawWaiting: ArchiveProgress | undefined;
    const fake = fakeTable(2);
    const activities = fakeTable(2, {
      exportBatch: (input) => {
        if (input.batch === 2 && ++attempts <= 12)
          return Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:9000'));
        return fake.exportBatch!(input);
      },
    });
    const result = await run(activities, async (handle) => {
      sawWaiting = await progressIn(handle, 'waiting out a fault', 60_000);
    });
    assert.ok(!(result instanceof Error), result instanceof Error ? result.message : '');
    assert.equal(result.outcome === 'archived' && result.rowsArchived, 20);
    assert.equal(attempts, 13);
    assert.equal(sawWaiting?.waiting?.step, 'export batch 2');
    assert.match(sawWaiting?.waiting?.lastError ?? '', /ECONNREFUSED/);
  });

  it('fails at once on a fault no retry can fix, and deletes nothing after it', async () => {
    const activities = fakeTable(3, {
      verifyBatch: () =>
        Promise.reject(
          ApplicationFailure.create({ type: 'VerificationError', message: 'SHA-256 differs' }),
        ),
    });
    const result = await run(activities);
    assert.ok(result instanceof WorkflowFailedError);
    assert.match((result.cause?.cause as Error | undefined)?.message ?? '', /SHA-256 differs/);
    assert.equal(activities.calls.deleteBatch, undefined);
  });

  it('takes the lock again when its holder dies mid-run, and finishes', async () => {
    const activities = lockHolderDiesOnce(3);
    const result = await run(activities);
    assert.ok(!(result instanceof Error), result instanceof Error ? result.message : '');
    assert.equal(result.outcome === 'archived' && result.batches, 3);
    assert.ok(activities.holds() >= 2);
  });

  it('leaves a batch exported beside a delete unfinished when the lock was taken again and a restore held its day meanwhile', async () => {
    // One batch a day, 2020-01-01 to 03. The first delete finds the lock lost while batch 2
    // is exported beside it; by the time the lock is taken again, a restore holds 2020-01-02.
    const days = ['2020-01-01', '2020-01-02', '2020-01-03'];
    const fake = fakeTable(3);
    const exported: string[] = [];
    const deleted: string[] = [];
    let surveys = 0;
    let lockLost = false;
    const activities = fakeTable(3, {
      surveyTable: () =>
        Promise.resolve({
          holds: ++surveys > 1 ? [{ first: days[1]!, last: days[1]! }] : [],
          skipped: { nullKey: 0, outOfRange: 0 },
        }),
      findBatch: ({ cursor, holds }) => {
        const day = days.find(
          (d) =>
            (cursor.day === null || d > cursor.day) &&
            !holds.some((h) => h.first <= d && d <= h.last),
        );
        return Promise.resolve(day ? { day, afterKey: null } : null);
      },
      exportBatch: async (input) => {
        const batch = await fake.exportBatch!(input);
        if (batch.kind !== 'batch') return batch;
        const day = input.start.day;
        exported.push(`${input.batch}@${day}`);
        const following = days[days.indexOf(day) + 1];
        return {
          ...batch,
          day,
          next: { day, afterKey: batch.lastKey },
          following: following ? { day: following, afterKey: null } : null,
        };
      },
      deleteBatch: async (input) => {
        if (!lockLost) {
          lockLost = true;
          throw ApplicationFailure.create({ type: 'LockLostError', message: 'lock lost' });
        }
        deleted.push(input.object);
        return fake.deleteBatch!(input);
      },
    });
    const result = await run(activities);
    assert.ok(!(result instanceof Error), result instanceof Error ? result.message : '');
    assert.deepEqual(exported, ['1@2020-01-01', '2@2020-01-02', '3@2020-01-03']);
    // Batch 2's object stays unverified and undeleted; its number is not used again.
    assert.deepEqual(deleted, ['o/1.jsonl.gz', 'o/3.jsonl.gz']);
    assert.equal(result.outcome === 'archived' && result.batches, 2);
  });

  it('ends as locked, naming the holder, when another run holds the table', async () => {
    const activities = fakeTable(3, {
      holdTableLock: () => Promise.resolve({ acquired: false, heldBy: 'audit-archiver lock xyz' }),
    });
    const result = await run(activities);
    assert.deepEqual(result, { outcome: 'locked', heldBy: 'audit-archiver lock xyz' });
    assert.equal(activities.calls.exportBatch, undefined);
  });

  it('waits while a throttle signal is over its limit, says why in its progress, and goes on once it clears', async () => {
    let reads = 0;
    let sawThrottled: ArchiveProgress | undefined;
    const activities = fakeTable(2, {
      // Lock waiters over the limit for the first three readings, then quiet.
      readThrottleSignals: () => {
        reads++;
        const busy = reads <= 3;
        return Promise.resolve({
          limits: { ...QUIET.limits, maxLockWaiters: 5, pauseMs: 500, maxPauseMs: 500 },
          signals: { ...QUIET.signals, lockWaiters: busy ? 9 : 0 },
        });
      },
    });
    const result = await run(activities, async (handle) => {
      sawThrottled = await progressIn(handle, 'throttled', 10_000);
    });
    assert.ok(!(result instanceof Error), result instanceof Error ? result.message : '');
    assert.equal(result.outcome === 'archived' && result.batches, 2);
    assert.deepEqual(sawThrottled?.throttledBy, ['lock waits']);
    assert.match(sawThrottled?.throttleReason ?? '', /9 sessions waiting for locks > 5/);
    assert.ok(reads >= 4, `${reads} readings`);
  });

  it('stops after the batch in progress when cancelled: that batch is deleted whole, no other is exported', async () => {
    const activities = slowExports(50, 200);
    const result = await run(activities, cancelAfterExports(activities, 2));
    assert.ok(result instanceof WorkflowFailedError, 'the run ends');
    assert.ok(result.cause instanceof CancelledFailure, `ends cancelled: ${String(result.cause)}`);
    // Every batch exported was also deleted: none was left half-done.
    assert.equal(activities.calls.deleteBatch, activities.exports());
    assert.ok(activities.exports() < 50);
  });

  it('deletes the batch exported ahead whole when cancelled while throttled', async () => {
    // Quiet for the first reading, then lock waiters over the limit: the run exports batch 1
    // (batches follow each other without a rest, so a step exports ahead) and then waits.
    let reads = 0;
    const activities = slowExports(5, 0);
    activities.readThrottleSignals = () =>
      Promise.resolve({
        limits: { ...QUIET.limits, maxLockWaiters: 5, pauseMs: 500, maxPauseMs: 500 },
        signals: { ...QUIET.signals, lockWaiters: ++reads > 1 ? 9 : 0 },
      });
    const result = await run(activities, async (handle) => {
      assert.ok(await progressIn(handle, 'throttled', 20_000), 'the run is throttled');
      await handle.cancel();
    });
    assert.ok(result instanceof WorkflowFailedError, 'the run ends');
    assert.ok(result.cause instanceof CancelledFailure, `ends cancelled: ${String(result.cause)}`);
    assert.equal(activities.exports(), 1);
    assert.equal(activities.calls.verifyBatch, 1);
    assert.equal(activities.calls.deleteBatch, 1);
  });

  it('continues as new when its history reaches its threshold, and every batch is exported and deleted exactly once across the runs', async () => {
    // Enough batches for the history to pass HISTORY_EVENTS_PER_RUN (4,000 events) at least once.
    const BATCHES = 300;
    const exported: number[] = [];
    const fake = fakeTable(BATCHES);
    const activities = fakeTable(BATCHES, {
      exportBatch: (input) => {
        exported.push(input.batch);
        return fake.exportBatch!(input);
      },
    });
    let first: { workflowId: string; runId?: string } | undefined;
    const result = await run(activities, (handle) => {
      first = { workflowId: handle.workflowId, runId: handle.firstExecutionRunId };
      return Promise.resolve();
    });
    assert.ok(!(result instanceof Error), result instanceof Error ? result.message : '');
    assert.equal(result.outcome === 'archived' && result.batches, BATCHES);
    assert.equal(result.outcome === 'archived' && result.rowsArchived, BATCHES * 10);
    const firstRun = await env()
      .client.workflow.getHandle(first!.workflowId, first!.runId)
      .describe();
    assert.equal(firstRun.status.name, 'CONTINUED_AS_NEW');
    assert.deepEqual(
      exported,
      Array.from({ length: BATCHES }, (_, i) => i + 1),
    );
    assert.equal(activities.calls.deleteBatch, BATCHES);
    // Each run takes the table lock once, and releases it before it continues as new.
    assert.ok(activities.calls.holdTableLock! >= 2, `${activities.calls.holdTableLock} lock takes`);
  });
});
