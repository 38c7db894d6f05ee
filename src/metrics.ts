import { createServer, type Server } from 'node:http';
import type { InjectedSinks } from '@temporalio/worker';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import {
  SUCCESSFUL_OUTCOMES,
  type ArchiverMetricsSinks,
  type RunEndEvent,
  type ThrottleWaitEvent,
} from './shared/metrics-sink';

/** The worker's Prometheus registry: the process's own metrics, and the archive's (ArchiveMetrics). */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service: 'audit-archiver' });
  collectDefaultMetrics({ register: registry, prefix: 'audit_archiver_' });
  // Gauges named like counters, which `promtool check metrics` rejects; the same series by
  // type (audit_archiver_nodejs_active_handles, ...) stay, and sum() gives the totals.
  for (const name of ['active_handles_total', 'active_requests_total', 'active_resources_total'])
    registry.removeSingleMetric(`audit_archiver_nodejs_${name}`);
  return registry;
}

/** A table as metrics label it: its database, and `schema.table`. */
export interface TableLabels {
  database: string;
  table: string;
}

/** A table as activities and workflows name it. */
interface TableName {
  database: string;
  schema?: string;
  table: string;
}

export type BatchStage = 'export' | 'verify' | 'delete' | 'restore';

const tableLabels = (ref: TableName): TableLabels => ({
  database: ref.database,
  table: `${ref.schema ?? 'public'}.${ref.table}`,
});
const keyOf = (labels: TableLabels) => `${labels.database}\u0000${labels.table}`;

/**
 * Batch stages take from milliseconds (a small batch, a verify of a small object) to many
 * minutes (a large batch on a busy database, waiting out a fault inside the activity).
 */
const STAGE_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];
/** Taking a table's lock: an instant when free, up to lock_timeout when the catalog is busy. */
const LOCK_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60];

/** Starts a clock; the function returned gives the seconds since. */
export function stopwatch(): () => number {
  const start = process.hrtime.bigint();
  return () => Number(process.hrtime.bigint() - start) / 1e9;
}

/** An error type label: a class name or an errno code, bounded in length and alphabet. */
export function errorType(err: unknown): string {
  if (!(err instanceof Error)) return 'NonError';
  const code = (err as NodeJS.ErrnoException).code;
  // Node's system errors are all class Error: their code (ECONNRESET, ...) says more.
  let name = err.constructor.name;
  if (name === 'Error' && typeof code === 'string' && /^E[A-Z0-9_]+$/.test(code)) name = code;
  else if (err.name && err.name !== 'Error' && name === 'Error') name = err.name;
  const clean = name.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 64);
  return clean === '' ? 'Error' : clean;
}

/** The table an activity's input names (`table`, `source`, or the input itself), if any. */
export function tableOfInput(input: unknown): TableLabels | undefined {
  const isRef = (v: unknown): v is TableName =>
    typeof v === 'object' &&
    v !== null &&
    typeof (v as TableName).database === 'string' &&
    typeof (v as TableName).table === 'string';
  if (typeof input !== 'object' || input === null) return undefined;
  const { table, source } = input as { table?: unknown; source?: unknown };
  if (isRef(table)) return tableLabels(table);
  if (isRef(source)) return tableLabels(source);
  if (isRef(input)) return tableLabels(input);
  return undefined;
}

/**
 * The archive's metrics, per worker process: activities and workflows (through the sink,
 * archiverSinks) record into it, and the worker serves its registry at /metrics. Counters
 * start at zero when the process starts (Prometheus' rate() and increase() take resets in
 * their stride); several workers each serve their own, summed by the queries. Labels are
 * bounded: database, table (`schema.table`), stage, activity, error type, signal, outcome;
 * never an id. See docs/monitoring.md.
 */
export class ArchiveMetrics {
  private readonly rowsArchived: Counter<'database' | 'table'>;
  private readonly rowsDeleted: Counter<'database' | 'table'>;
  private readonly rowsRestored: Counter<'database' | 'table'>;
  private readonly bytesWritten: Counter<'database' | 'table'>;
  private readonly objectsWritten: Counter<'database' | 'table'>;
  private readonly batches: Counter<'database' | 'table'>;
  private readonly stageSeconds: Histogram<'database' | 'table' | 'stage'>;
  private readonly failures: Counter<'database' | 'table' | 'activity' | 'error_type'>;
  private readonly throttleWaits: Counter<'database' | 'table' | 'signal'>;
  private readonly throttleSeconds: Counter<'database' | 'table' | 'signal'>;
  private readonly lockAttempts: Counter<'database' | 'table' | 'result'>;
  private readonly lockSeconds: Histogram<'database' | 'table'>;
  private readonly pastRetention: Gauge<'database' | 'table'>;
  private readonly runs: Counter<'database' | 'table' | 'outcome'>;
  private readonly runFailures: Counter<'database' | 'table' | 'error_type'>;
  private readonly lastSuccess: Gauge<'database' | 'table'>;
  private readonly retention: Gauge<'database' | 'table'>;
  /** Epoch seconds of each table's oldest row not yet archived (null: none left), as last read. */
  private readonly oldest = new Map<string, { labels: TableLabels; epoch: number | null }>();
  /** Rows past retention per table as the last survey counted them, less deletes since. */
  private readonly surveyed = new Map<string, number>();

  constructor(
    readonly registry: Registry = new Registry(),
    /** The clock the age of the oldest row is measured by at each scrape. */
    private readonly now: () => number = Date.now,
  ) {
    const table = ['database', 'table'] as const;
    const registers = [registry];
    this.rowsArchived = new Counter({
      name: 'audit_archiver_rows_archived_total',
      help: 'Rows exported to archive objects in the bucket (one count per successful export attempt).',
      labelNames: table,
      registers,
    });
    this.rowsDeleted = new Counter({
      name: 'audit_archiver_rows_deleted_total',
      help: 'Rows deleted from the table after their archive object was verified.',
      labelNames: table,
      registers,
    });
    this.rowsRestored = new Counter({
      name: 'audit_archiver_rows_restored_total',
      help: 'Rows written back into a table by restore (inserted or overwritten), by the source table.',
      labelNames: table,
      registers,
    });
    this.bytesWritten = new Counter({
      name: 'audit_archiver_bytes_written_total',
      help: 'Bytes of archive data objects (gzip-compressed JSON Lines) written to the bucket.',
      labelNames: table,
      registers,
    });
    this.objectsWritten = new Counter({
      name: 'audit_archiver_objects_written_total',
      help: 'Archive data objects written to the bucket (one per batch).',
      labelNames: table,
      registers,
    });
    this.batches = new Counter({
      name: 'audit_archiver_batches_total',
      help: 'Batches finished: exported, verified, and deleted (or kept by a legal hold).',
      labelNames: table,
      registers,
    });
    this.stageSeconds = new Histogram({
      name: 'audit_archiver_batch_stage_duration_seconds',
      help: 'Time one batch spent in a stage (export, verify, delete, restore), per successful activity attempt.',
      labelNames: [...table, 'stage'],
      buckets: STAGE_BUCKETS,
      registers,
    });
    this.failures = new Counter({
      name: 'audit_archiver_activity_failures_total',
      help: 'Activity attempts that failed, by activity and error type (class name); Temporal retries those it may.',
      labelNames: [...table, 'activity', 'error_type'],
      registers,
    });
    this.throttleWaits = new Counter({
      name: 'audit_archiver_throttle_waits_total',
      help: 'Waits before a batch because a throttle limit was passed, by the first signal named.',
      labelNames: [...table, 'signal'],
      registers,
    });
    this.throttleSeconds = new Counter({
      name: 'audit_archiver_throttle_wait_seconds_total',
      help: 'Time spent waiting on throttle limits, by the first signal named.',
      labelNames: [...table, 'signal'],
      registers,
    });
    this.lockAttempts = new Counter({
      name: 'audit_archiver_table_lock_attempts_total',
      help: "Attempts to take a table's lock: acquired, or busy (another run holds it).",
      labelNames: [...table, 'result'],
      registers,
    });
    this.lockSeconds = new Histogram({
      name: 'audit_archiver_table_lock_wait_seconds',
      help: "Time from asking for a table's lock to holding it.",
      labelNames: table,
      buckets: LOCK_BUCKETS,
      registers,
    });
    this.pastRetention = new Gauge({
      name: 'audit_archiver_rows_past_retention',
      help: "Rows older than the run's cutoff still in the table: counted when a run starts, less the rows each batch deletes.",
      labelNames: table,
      registers,
    });
    const oldest = this.oldest;
    const clock = this.now;
    new Gauge({
      name: 'audit_archiver_oldest_row_age_seconds',
      help: 'Age of the oldest row the archive may take that is still in the table (0: none), as of the last read by a run.',
      labelNames: table,
      registers,
      collect() {
        for (const { labels, epoch } of oldest.values())
          this.set(labels, epoch === null ? 0 : Math.max(0, clock() / 1000 - epoch));
      },
    });
    this.runs = new Counter({
      name: 'audit_archiver_runs_total',
      help: 'ArchiveTable runs ended on this worker, by outcome (archived, nothing-to-archive, locked, dry-run, failed, cancelled).',
      labelNames: [...table, 'outcome'],
      registers,
    });
    this.runFailures = new Counter({
      name: 'audit_archiver_run_failures_total',
      help: 'ArchiveTable runs that failed, by error type.',
      labelNames: [...table, 'error_type'],
      registers,
    });
    this.lastSuccess = new Gauge({
      name: 'audit_archiver_last_success_timestamp_seconds',
      help: 'Unix time the last ArchiveTable run of the table ended archived or with nothing to archive, on this worker.',
      labelNames: table,
      registers,
    });
    this.retention = new Gauge({
      name: 'audit_archiver_retention_seconds',
      help: "The table's retention period in the worker's config: rows older than this are archived.",
      labelNames: table,
      registers,
    });
  }

  /** The configured tables and their retention, for alerts that compare an age with it. */
  configured(tables: readonly (TableName & { retentionDays: number })[]): void {
    for (const t of tables) this.retention.set(tableLabels(t), t.retentionDays * 86_400);
  }

  /** A batch exported: its object holds `rows` rows in `bytes` bytes. */
  exported(ref: TableName, batch: { rows: number; bytes: number }, seconds: number): void {
    const labels = tableLabels(ref);
    this.rowsArchived.inc(labels, batch.rows);
    this.bytesWritten.inc(labels, batch.bytes);
    this.objectsWritten.inc(labels);
    this.stageSeconds.observe({ ...labels, stage: 'export' }, seconds);
  }

  verified(ref: TableName, seconds: number): void {
    this.stageSeconds.observe({ ...tableLabels(ref), stage: 'verify' }, seconds);
  }

  /** A batch finished by its delete: `deleted` rows gone now (none on a retry that finds them gone). */
  deleted(ref: TableName, deleted: number, seconds: number): void {
    const labels = tableLabels(ref);
    this.rowsDeleted.inc(labels, deleted);
    this.batches.inc(labels);
    this.stageSeconds.observe({ ...labels, stage: 'delete' }, seconds);
    // The survey's count (if this worker ran it) goes down by what the run deletes.
    const key = keyOf(labels);
    const left = this.surveyed.get(key);
    if (left !== undefined) {
      this.surveyed.set(key, Math.max(0, left - deleted));
      this.pastRetention.set(labels, Math.max(0, left - deleted));
    }
  }

  restored(source: TableName, rows: number, seconds: number): void {
    const labels = tableLabels(source);
    this.rowsRestored.inc(labels, rows);
    this.stageSeconds.observe({ ...labels, stage: 'restore' }, seconds);
  }

  /** An activity attempt that threw (cancellations are not failures and are not counted). */
  failed(activity: string, err: unknown, input: unknown): void {
    const labels = tableOfInput(input) ?? { database: '', table: '' };
    this.failures.inc({ ...labels, activity, error_type: errorType(err) });
  }

  lockAttempt(ref: TableName, result: 'acquired' | 'busy', seconds: number): void {
    const labels = tableLabels(ref);
    this.lockAttempts.inc({ ...labels, result });
    if (result === 'acquired') this.lockSeconds.observe(labels, seconds);
  }

  /** The backlog a run read when it started: rows past its cutoff, and the oldest row's time. */
  backlog(ref: TableName, read: { rowsPastRetention: number; oldestEpoch: number | null }): void {
    const labels = tableLabels(ref);
    const key = keyOf(labels);
    this.surveyed.set(key, read.rowsPastRetention);
    this.pastRetention.set(labels, read.rowsPastRetention);
    this.oldest.set(key, { labels, epoch: read.oldestEpoch });
  }

  /** The oldest row left after a batch's delete (null: none the archive may take). */
  oldestRow(ref: TableName, oldestEpoch: number | null): void {
    const labels = tableLabels(ref);
    this.oldest.set(keyOf(labels), { labels, epoch: oldestEpoch });
  }

  throttled(event: ThrottleWaitEvent): void {
    const labels = { ...tableLabels(event), signal: event.signal };
    this.throttleWaits.inc(labels);
    this.throttleSeconds.inc(labels, event.ms / 1000);
  }

  runEnded(event: RunEndEvent): void {
    const labels = tableLabels(event);
    this.runs.inc({ ...labels, outcome: event.outcome });
    if (event.outcome === 'failed')
      this.runFailures.inc({ ...labels, error_type: event.errorType ?? 'unknown' });
    if (SUCCESSFUL_OUTCOMES.includes(event.outcome))
      this.lastSuccess.set(labels, this.now() / 1000);
  }
}

/**
 * The sink workflows record into (src/shared/metrics-sink.ts), for Worker.create's `sinks`.
 * Not called on replay, so a replayed history counts nothing twice.
 */
export function archiverSinks(metrics: ArchiveMetrics): InjectedSinks<ArchiverMetricsSinks> {
  return {
    archiverMetrics: {
      throttled: { fn: (_info, event) => metrics.throttled(event) },
      runEnded: { fn: (_info, event) => metrics.runEnded(event) },
    },
  };
}

export interface Health {
  healthy: boolean;
  details: Record<string, unknown>;
}

/**
 * Serves `/metrics` (Prometheus text) and `/healthz` (200 while healthy, 503 otherwise, with a
 * JSON body saying why). Resolves once listening.
 */
export async function startHttpEndpoint(options: {
  host: string;
  port: number;
  registry: Registry;
  health: () => Health;
}): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === '/metrics') {
      options.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': options.registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
    } else if (path === '/healthz') {
      const health = options.health();
      res
        .writeHead(health.healthy ? 200 : 503, { 'content-type': 'application/json' })
        .end(JSON.stringify({ status: health.healthy ? 'ok' : 'unavailable', ...health.details }));
    } else {
      res
        .writeHead(404, { 'content-type': 'text/plain' })
        .end('not found: try /metrics or /healthz\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/** `host:port` as validated by the config schema. */
export function splitHostPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at), port: Number(address.slice(at + 1)) };
}
