import assert from 'node:assert/strict';
import { ActivityFailure, ApplicationFailure, RetryState } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DatabaseError } from 'pg';
import { Registry } from 'prom-client';
import { wireActivities } from '../../activities/wiring';
import { ArchiveMetrics, archiverSinks, errorType, tableOfInput } from '../../src/metrics';
import { DatabaseRefusedError } from '../../src/shared/errors';
import { failureType } from '../../src/shared/metrics-sink';

const ref = { database: 'app', schema: 'public', table: 'audit_log' };
/** The SDK logs each failed attempt; the test looks at the metrics instead. */
const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/** The value of one series in the registry, or undefined when it is not there. */
async function valueOf(
  registry: Registry,
  name: string,
  labels: Record<string, string>,
): Promise<number | undefined> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  const found = values.find(
    (v) =>
      (v as { metricName?: string }).metricName === undefined &&
      Object.entries(labels).every(([k, want]) => v.labels[k] === want),
  );
  return found?.value;
}

describe('archive metrics (src/metrics.ts)', () => {
  it('counts an exported, verified and deleted batch under its database and schema.table', async () => {
    const metrics = new ArchiveMetrics();
    metrics.exported(ref, { rows: 100, bytes: 2048 }, 0.5);
    metrics.verified(ref, 0.1);
    metrics.deleted(ref, 98, 0.2);
    const labels = { database: 'app', table: 'public.audit_log' };
    const r = metrics.registry;
    assert.equal(await valueOf(r, 'audit_archiver_rows_archived_total', labels), 100);
    assert.equal(await valueOf(r, 'audit_archiver_bytes_written_total', labels), 2048);
    assert.equal(await valueOf(r, 'audit_archiver_objects_written_total', labels), 1);
    assert.equal(await valueOf(r, 'audit_archiver_rows_deleted_total', labels), 98);
    assert.equal(await valueOf(r, 'audit_archiver_batches_total', labels), 1);
    const text = await r.metrics();
    for (const stage of ['export', 'verify', 'delete']) {
      assert.match(
        text,
        new RegExp(
          `^audit_archiver_batch_stage_duration_seconds_count\\{database="app",table="public.audit_log",stage="${stage}"\\} 1$`,
          'm',
        ),
      );
    }
  });

  it("measures the oldest row's age at each scrape, and counts rows past retention down as batches delete", async () => {
    let now = 1_000_000_000_000;
    const metrics = new ArchiveMetrics(new Registry(), () => now);
    const labels = { database: 'app', table: 'public.audit_log' };
    metrics.backlog(ref, { rowsPastRetention: 250, oldestEpoch: 1_000_000_000 - 3600 });
    assert.equal(
      await valueOf(metrics.registry, 'audit_archiver_oldest_row_age_seconds', labels),
      3600,
    );
    now += 60_000;
    assert.equal(
      await valueOf(metrics.registry, 'audit_archiver_oldest_row_age_seconds', labels),
      3660,
    );
    metrics.deleted(ref, 100, 0.1);
    metrics.deleted(ref, 200, 0.1);
    assert.equal(await valueOf(metrics.registry, 'audit_archiver_rows_past_retention', labels), 0);
    metrics.oldestRow(ref, null);
    assert.equal(
      await valueOf(metrics.registry, 'audit_archiver_oldest_row_age_seconds', labels),
      0,
    );
  });

  it('sets the last success time only for runs that archived or had nothing to archive', async () => {
    let now = 1_700_000_000_000;
    const metrics = new ArchiveMetrics(new Registry(), () => now);
    const sinks = archiverSinks(metrics);
    const info = {} as Parameters<typeof sinks.archiverMetrics.runEnded.fn>[0];
    const labels = { database: 'app', table: 'public.audit_log' };
    const last = 'audit_archiver_last_success_timestamp_seconds';
    await sinks.archiverMetrics.runEnded.fn(info, { ...ref, outcome: 'archived' });
    assert.equal(await valueOf(metrics.registry, last, labels), 1_700_000_000);
    now += 10_000;
    await sinks.archiverMetrics.runEnded.fn(info, {
      ...ref,
      outcome: 'failed',
      errorType: 'LockLostError',
    });
    await sinks.archiverMetrics.runEnded.fn(info, { ...ref, outcome: 'locked' });
    assert.equal(await valueOf(metrics.registry, last, labels), 1_700_000_000);
    await sinks.archiverMetrics.runEnded.fn(info, { ...ref, outcome: 'nothing-to-archive' });
    assert.equal(await valueOf(metrics.registry, last, labels), 1_700_000_010);
    assert.equal(
      await valueOf(metrics.registry, 'audit_archiver_run_failures_total', {
        ...labels,
        error_type: 'LockLostError',
      }),
      1,
    );
    assert.equal(
      await valueOf(metrics.registry, 'audit_archiver_runs_total', {
        ...labels,
        outcome: 'locked',
      }),
      1,
    );
  });

  it('counts throttle waits and their seconds by the signal named', async () => {
    const metrics = new ArchiveMetrics();
    metrics.throttled({ ...ref, signal: 'replica lag', ms: 1500 });
    metrics.throttled({ ...ref, signal: 'replica lag', ms: 500 });
    const labels = { database: 'app', table: 'public.audit_log', signal: 'replica lag' };
    assert.equal(await valueOf(metrics.registry, 'audit_archiver_throttle_waits_total', labels), 2);
    assert.equal(
      await valueOf(metrics.registry, 'audit_archiver_throttle_wait_seconds_total', labels),
      2,
    );
  });

  it('labels an activity failure with the table of its input and the error class, never an id', async () => {
    const metrics = new ArchiveMetrics();
    metrics.failed('exportBatch', new DatabaseRefusedError('refused', {}), {
      table: ref,
      run: '20261203T1200Z-0123abcd',
      object: 'prefix/app/public.audit_log/year=2026/x.jsonl.gz',
    });
    const text = await metrics.registry.metrics();
    assert.match(
      text,
      /^audit_archiver_activity_failures_total\{database="app",table="public.audit_log",activity="exportBatch",error_type="DatabaseRefusedError"\} 1$/m,
    );
    assert.doesNotMatch(text, /0123abcd|jsonl/);
  });

  it('counts each failed activity attempt once, and a cancelled attempt not at all', async () => {
    const metrics = new ArchiveMetrics();
    const wired = wireActivities(
      {
        exportBatch: (_input: { table: typeof ref }) =>
          Promise.reject(Object.assign(new Error('reset'), { code: 'ECONNRESET' })),
        verifyBatch: (_input: { table: typeof ref }) =>
          new Promise<void>((_resolve, reject) => setTimeout(() => reject(new Error('late')), 50)),
      },
      // Their own heartbeat: no timer left running by the test.
      new Set(['exportBatch', 'verifyBatch']),
      metrics,
    );
    await assert.rejects(
      new MockActivityEnvironment(undefined, { logger: quiet }).run(wired.exportBatch, {
        table: ref,
      }),
    );
    const env = new MockActivityEnvironment(undefined, { logger: quiet });
    const cancelled = env.run(wired.verifyBatch, { table: ref });
    env.cancel();
    await assert.rejects(cancelled);
    const text = await metrics.registry.metrics();
    assert.match(
      text,
      /^audit_archiver_activity_failures_total\{database="app",table="public.audit_log",activity="exportBatch",error_type="ECONNRESET"\} 1$/m,
    );
    assert.doesNotMatch(text, /activity="verifyBatch"/);
  });

  it('names error types by class, errno code or failure type, bounded to a safe alphabet', () => {
    assert.equal(errorType(new DatabaseError('x', 0, 'error')), 'DatabaseError');
    assert.equal(
      errorType(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })),
      'ECONNREFUSED',
    );
    assert.equal(errorType('a string'), 'NonError');
    assert.equal(errorType(new TypeError('x')), 'TypeError');
    const cause = ApplicationFailure.nonRetryable('gone', 'LockLostError');
    const wrapped = new ActivityFailure(
      'activity failed',
      'deleteBatch',
      '7',
      RetryState.NON_RETRYABLE_FAILURE,
      'worker',
      cause,
    );
    assert.equal(failureType(wrapped), 'LockLostError');
    assert.equal(
      failureType(ApplicationFailure.create({ type: 'bad type/with "quotes"' })),
      'bad_type_with__quotes_',
    );
  });

  it('finds the table of an activity input by `table`, `source`, or the input itself', () => {
    const labels = { database: 'app', table: 'public.audit_log' };
    assert.deepEqual(tableOfInput({ table: ref, cutoff: 'x' }), labels);
    assert.deepEqual(tableOfInput({ source: ref, target: { database: 'other' } }), labels);
    assert.deepEqual(tableOfInput({ database: 'app', table: 'audit_log' }), labels);
    assert.equal(tableOfInput({ tables: [] }), undefined);
    assert.equal(tableOfInput(undefined), undefined);
  });
});
