import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { runCli } from '../helpers/cli';
import { testConfigInput, writeConfigFile } from '../helpers/config';
import { TestDatabase } from '../helpers/database';
import { PROJECT_DIR } from '../helpers/stack';
import { freePort, WorkerProcess } from '../helpers/worker-process';

/** One sample of a Prometheus text exposition. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/**
 * Every name a query may use: the samples', and each declared family's (a counter with no
 * series yet, like failures on a run with none, is served all the same), with a histogram's
 * _bucket, _sum and _count.
 */
function servedNames(text: string): Set<string> {
  const names = new Set(parseExposition(text).map((s) => s.name));
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(m[1]!);
    if (m[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m[1]! + s);
  }
  return names;
}

/** `promtool ARGS` with `input` on stdin: any complaint (lint warnings too) fails the test. */
function promtool(args: string[], input?: string): void {
  const run = spawnSync('promtool', args, { input, encoding: 'utf8' });
  assert.equal(run.error, undefined, `promtool: ${String(run.error)}`);
  assert.equal(
    run.status,
    0,
    `promtool ${args.join(' ')} exited ${run.status}:\n${run.stdout}${run.stderr}`,
  );
  if (args[1] === 'metrics') assert.equal(run.stdout + run.stderr, '', 'promtool complained');
}

async function scrape(address: string): Promise<string> {
  const res = await fetch(`http://${address}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

const DOCS = path.join(PROJECT_DIR, 'docs', 'monitoring');

// The acceptance of issue 13's metrics: a real `audit-archiver worker` process (real
// PostgreSQL, MinIO and Temporal) archives a table, and its /metrics then tells the story,
// in a form promtool accepts; the alerting rules and the dashboard in docs/ use its names.
describe('worker /metrics after a real archive run', function () {
  this.timeout(180_000);
  let db: TestDatabase;
  let worker: WorkerProcess | undefined;
  let httpAddress: string;
  let sdkAddress: string;
  let text: string;
  let samples: Sample[];
  let configFile: string;
  const table = { database: '', table: 'public.audit_log' };

  before(async () => {
    db = await TestDatabase.create();
    table.database = db.name;
    // 200 rows on two days past retention (5 batches of 50 within those days) and 20 recent.
    await db.query(
      `create table audit_log (
         id bigint generated always as identity primary key,
         created_at timestamptz not null,
         actor text not null,
         payload jsonb
       )`,
    );
    await db.query(
      `insert into audit_log (created_at, actor, payload)
       select date_trunc('day', now()) - (case when g <= 120 then 20 else 10 end) * interval '1 day'
                + g * interval '1 second',
              'user' || (g % 7), jsonb_build_object('n', g)
         from generate_series(1, 200) as g
       union all
       select now() - interval '1 day', 'recent', null from generate_series(1, 20)`,
    );
    httpAddress = `127.0.0.1:${await freePort()}`;
    sdkAddress = `127.0.0.1:${await freePort()}`;
    configFile = writeConfigFile(
      testConfigInput({
        database: db.name,
        prefix: `metrics-${randomUUID()}/`,
        taskQueue: `test-metrics-${randomUUID()}`,
        overrides: (c) => {
          c.defaults = {
            retention_days: 7,
            batch_size: 50,
            pause_between_batches_ms: 0,
            // Rests as long as each batch worked: a throttle wait after every batch, by the
            // nice ratio, whatever the machine's speed.
            throttle: { nice_ratio: 1, max_probe_slowdown: null },
          };
          c.worker = {
            http_address: httpAddress,
            sdk_metrics_address: sdkAddress,
            shutdown_grace_seconds: 5,
          };
        },
      }),
    );
    worker = await WorkerProcess.start(configFile, httpAddress);
    const run = await runCli(['archive', '--config', configFile], {}, 150_000);
    assert.equal(run.code, 0, `${run.stdout}${run.stderr}\n--- worker log ---\n${worker.log}`);
    text = await scrape(httpAddress);
    samples = parseExposition(text);
  });

  after(async () => {
    await worker?.kill();
    await db?.drop();
  });

  /** The value of the series `name` of the archived table (and `extra` labels), if any. */
  const valueOf = (name: string, extra: Record<string, string> = {}): number | undefined =>
    samples.find(
      (s) =>
        s.name === name &&
        Object.entries({ ...table, ...extra }).every(([k, v]) => s.labels[k] === v),
    )?.value;

  it('counts the rows, bytes and objects the run archived for the table', async () => {
    const { left } = await db.one<{ left: number }>(
      `select count(*)::int as left from audit_log where created_at < now() - interval '7 days'`,
    );
    assert.equal(left, 0, 'the run archived every old row');
    assert.equal(valueOf('audit_archiver_rows_archived_total'), 200);
    assert.equal(valueOf('audit_archiver_rows_deleted_total'), 200);
    assert.equal(valueOf('audit_archiver_objects_written_total'), 5);
    assert.equal(valueOf('audit_archiver_batches_total'), 5);
    assert.ok((valueOf('audit_archiver_bytes_written_total') ?? 0) > 0, text);
    for (const stage of ['export', 'verify', 'delete'])
      assert.equal(valueOf('audit_archiver_batch_stage_duration_seconds_count', { stage }), 5);
  });

  it("has the table's backlog gauges: nothing past retention, the oldest row about a day old", () => {
    assert.equal(valueOf('audit_archiver_rows_past_retention'), 0);
    const age = valueOf('audit_archiver_oldest_row_age_seconds');
    assert.ok(age !== undefined, `no backlog gauge for the table:\n${text}`);
    // The 20 recent rows are a day old; the archived ones were 10 and 20 days old.
    assert.ok(age > 86_000 && age < 7 * 86_400, `oldest row age ${age}`);
    assert.equal(valueOf('audit_archiver_retention_seconds'), 7 * 86_400);
  });

  it('records the run: its outcome, the last success time, the lock and the throttle waits', () => {
    assert.equal(valueOf('audit_archiver_runs_total', { outcome: 'archived' }), 1);
    const last = valueOf('audit_archiver_last_success_timestamp_seconds');
    assert.ok(last !== undefined && Math.abs(last - Date.now() / 1000) < 3600, `last ${last}`);
    assert.equal(valueOf('audit_archiver_table_lock_attempts_total', { result: 'acquired' }), 1);
    assert.ok((valueOf('audit_archiver_throttle_waits_total', { signal: 'nice ratio' }) ?? 0) > 0);
    assert.equal(
      samples.some((s) => s.name === 'audit_archiver_activity_failures_total'),
      false,
      'no activity failed',
    );
  });

  it('labels every series with bounded labels only, never a run, workflow or object id', () => {
    const allowed = new Set([
      'service',
      'database',
      'table',
      'stage',
      'activity',
      'error_type',
      'signal',
      'outcome',
      'result',
      'le',
      // prom-client's process and Node.js metrics
      'type',
      'kind',
      'space',
      'version',
      'major',
      'minor',
      'patch',
    ]);
    for (const s of samples.filter((s) => s.name.startsWith('audit_archiver_'))) {
      for (const label of Object.keys(s.labels))
        assert.ok(allowed.has(label), `${s.name} has label ${label}`);
    }
    assert.doesNotMatch(text, /archive\/|jsonl|[0-9a-f]{8}-[0-9a-f]{4}-/);
  });

  it('passes `promtool check metrics`, lint included', () => {
    promtool(['check', 'metrics'], text);
  });

  it("serves the SDK's own metrics (Prometheus-named) at worker.sdk_metrics_address", async () => {
    const sdk = await scrape(sdkAddress);
    const names = new Set(parseExposition(sdk).map((s) => s.name));
    assert.ok(names.has('temporal_workflow_completed_total'), sdk);
    assert.ok(names.has('temporal_activity_execution_latency_seconds_bucket'), sdk);
  });

  it('has alerting rules that `promtool check rules` accepts, over metrics the worker serves', () => {
    const file = path.join(DOCS, 'alerts.yml');
    promtool(['check', 'rules', file]);
    const names = servedNames(text);
    const used = [...readFileSync(file, 'utf8').matchAll(/\baudit_archiver_[a-z0-9_]+/g)].map(
      (m) => m[0],
    );
    assert.ok(used.length > 0);
    for (const name of used) assert.ok(names.has(name), `alerts.yml uses ${name}, not served`);
  });

  it('has a Grafana dashboard whose every query names metrics the worker serves', async () => {
    const dashboard = JSON.parse(
      readFileSync(path.join(DOCS, 'grafana-dashboard.json'), 'utf8'),
    ) as {
      title: string;
      panels: {
        id: number;
        type: string;
        title: string;
        gridPos: { x: number; y: number; w: number; h: number };
        targets?: { expr: string }[];
      }[];
      templating: { list: { type: string; query: string | { query: string } }[] };
    };
    assert.ok(dashboard.title);
    // The shape Grafana imports: unique ids, a place on the 24-column grid, queries on panels.
    const ids = dashboard.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
    for (const p of dashboard.panels) {
      const { x, y, w, h } = p.gridPos;
      assert.ok(x >= 0 && w > 0 && x + w <= 24 && y >= 0 && h > 0, `${p.title}: gridPos`);
      if (p.type !== 'row') assert.ok((p.targets ?? []).length > 0, `${p.title}: no query`);
    }
    const names = new Set([...servedNames(text), ...servedNames(await scrape(sdkAddress))]);
    const queries = [
      ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
      ...dashboard.templating.list
        .filter((v) => v.type === 'query')
        .map((v) => (typeof v.query === 'string' ? v.query : v.query.query)),
    ];
    assert.ok(queries.length >= 10, `${queries.length} queries`);
    for (const query of queries) {
      const used = [...query.matchAll(/\b(?:audit_archiver|temporal)_[a-z0-9_]+/g)].map(
        (m) => m[0],
      );
      assert.ok(used.length > 0, `a query with no metric: ${query}`);
      for (const name of used)
        assert.ok(names.has(name), `the dashboard queries ${name}, not served`);
    }
  });

  // Last: it changes the table the tests above read.
  it('counts the rows a restore writes back, by the source table, with the restore stage', async () => {
    const restore = await runCli(
      ['restore', '--config', configFile, '-d', db.name, '-t', 'audit_log', '--restore-all'],
      {},
      150_000,
    );
    assert.equal(restore.code, 0, `${restore.stdout}${restore.stderr}`);
    samples = parseExposition(await scrape(httpAddress));
    assert.equal(valueOf('audit_archiver_rows_restored_total'), 200);
    assert.equal(
      valueOf('audit_archiver_batch_stage_duration_seconds_count', { stage: 'restore' }),
      5,
    );
  });
});
