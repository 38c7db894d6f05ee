import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config';
import type { ConfigInput } from '../../src/config/schema';
import { ManagedProcess, type ExitInfo } from './processes';
import { MINIO_PASSWORD, MINIO_USER, PROJECT_DIR } from './servers';
import { sleep, tailFile } from './util';

/** What the workers' configuration names: the private stack, reached through the proxies. */
export interface WorkerSettings {
  dir: string;
  temporalAddress: string;
  taskQueue: string;
  /** toxiproxy's listener in front of PostgreSQL. */
  pgPort: number;
  /** toxiproxy's listener in front of the S3 fault proxy and MinIO. */
  s3Port: number;
  bucket: string;
  prefix: string;
  database: string;
  table: string;
  retentionDays: number;
  batchSize: number;
}

/** The worker's configuration, as a user would write it, checked by the product's own parser. */
export function workerConfig(settings: WorkerSettings, httpPort: number): ConfigInput {
  const config: ConfigInput = {
    version: '2.0',
    temporal: {
      address: settings.temporalAddress,
      namespace: 'default',
      task_queue: settings.taskQueue,
    },
    s3: {
      endpoint: `http://127.0.0.1:${settings.s3Port}`,
      bucket: settings.bucket,
      prefix: settings.prefix,
      region: 'us-east-1',
    },
    defaults: {
      retention_days: settings.retentionDays,
      batch_size: settings.batchSize,
      pause_between_batches_ms: 0,
      // No rest between batches (as the tests run), and throttle waits capped at a few
      // seconds: faults make batches slow, and a minute's wait would only stretch the run.
      throttle: { nice_ratio: 0, pause_ms: 1_000, max_pause_ms: 5_000 },
    },
    databases: [
      {
        name: settings.database,
        host: '127.0.0.1',
        port: settings.pgPort,
        user: 'postgres',
        tables: [{ name: settings.table, timestamp_column: 'created_at', primary_key: 'id' }],
      },
    ],
    worker: { http_address: `127.0.0.1:${httpPort}`, shutdown_grace_seconds: 5 },
  };
  parseConfig(stringify(config), 'chaos-worker.yaml', {});
  return config;
}

type WorkerState = 'down' | 'running' | 'frozen';

/**
 * Why a worker died, from the end of its log: Node prints an uncaught error as plain text
 * (the error, its stack, and for an unhandled 'error' event the emitter), after the JSON log
 * lines. The error line, where it was thrown and the emitter make a one-line reason.
 */
export function crashReason(logFile: string): string {
  const plain = tailFile(logFile, 300)
    .split('\n')
    .filter((line) => !line.startsWith('{'));
  const at = plain.findLastIndex((line) => /^[A-Za-z]*(Error|Exception)\b/.test(line));
  if (at < 0) return plain.slice(-3).join(' ').trim() || 'no error printed';
  const where = plain.slice(at + 1).find((line) => line.trim().startsWith('at '));
  const emitted = plain.slice(at).find((line) => line.startsWith("Emitted 'error' event"));
  return [
    plain[at]!.trim(),
    emitted && `(unhandled: ${emitted.replace(/ at:$/, '')})`,
    where && `thrown ${where.trim()}`,
  ]
    .filter(Boolean)
    .join(' ');
}

/**
 * One real `audit-archiver worker` process, run from the sources as a user runs it, with a
 * configuration file and an HTTP endpoint of its own. Killed, frozen and started again by
 * the faults; an exit the harness did not cause is reported and the worker is started again,
 * as a supervisor would.
 */
export class ChaosWorker {
  state: WorkerState = 'down';
  private process: ManagedProcess | undefined;
  private readonly configFile: string;
  private readonly logFile: string;

  constructor(
    readonly name: string,
    settings: WorkerSettings,
    private readonly httpPort: number,
    private readonly onUnexpectedExit: (worker: ChaosWorker, why: string) => void,
  ) {
    this.configFile = path.join(settings.dir, `worker-${name}.yaml`);
    this.logFile = path.join(settings.dir, `worker-${name}.log`);
    writeFileSync(this.configFile, stringify(workerConfig(settings, httpPort)));
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  get label(): string {
    return `worker ${this.name}${this.pid ? ` (pid ${this.pid})` : ''}`;
  }

  private spawn(): ManagedProcess {
    const proc = new ManagedProcess(
      `worker ${this.name}`,
      process.execPath,
      [
        '--require',
        'tsx/cjs',
        path.join(PROJECT_DIR, 'src', 'app', 'cli', 'main.ts'),
        'worker',
        '--config',
        this.configFile,
        '--log-level',
        'warn',
      ],
      {
        cwd: PROJECT_DIR,
        // A clean environment: TEMPORAL_ADDRESS or PG* of the caller must not send the worker
        // to the shared stack.
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          TMPDIR: process.env.TMPDIR,
          AWS_ACCESS_KEY_ID: MINIO_USER,
          AWS_SECRET_ACCESS_KEY: MINIO_PASSWORD,
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        },
        logFile: this.logFile,
        onUnexpectedExit: (info: ExitInfo) => {
          if (this.process !== proc) return;
          const wasRunning = this.state !== 'down';
          this.state = 'down';
          if (wasRunning)
            this.onUnexpectedExit(
              this,
              `exited by itself (code ${info.code}, signal ${info.signal}): ${crashReason(this.logFile)}`,
            );
        },
      },
    );
    return proc;
  }

  /**
   * Starts the process and waits until /healthz says its Temporal worker runs. A start that
   * fails (Temporal restarting, say) is tried again until the deadline.
   */
  async start(timeoutMs = 120_000): Promise<void> {
    if (this.state !== 'down') return;
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 1; ; attempt++) {
      const proc = this.spawn();
      this.process = proc;
      // Not 'running' until healthy: an exit during startup is a failed start, not a crash.
      proc.start();
      for (;;) {
        if (!proc.running) break;
        const healthy = await fetch(`http://127.0.0.1:${this.httpPort}/healthz`, {
          signal: AbortSignal.timeout(2_000),
        })
          .then((res) => res.status === 200)
          .catch(() => false);
        if (healthy) {
          this.state = 'running';
          return;
        }
        if (Date.now() > deadline) break;
        await sleep(300);
      }
      await proc.stop('SIGKILL');
      if (Date.now() > deadline)
        throw new Error(
          `${this.label} did not become healthy within ${timeoutMs / 1000}s (${attempt} attempts); last lines of ${this.logFile}:\n${tailFile(this.logFile, 12)}`,
        );
      await sleep(1_000);
    }
  }

  /** SIGKILL: no drain, no goodbye to Temporal or PostgreSQL. */
  async kill(): Promise<void> {
    this.state = 'down';
    await this.process?.stop('SIGKILL');
  }

  /** SIGTERM: the worker drains (shutdown_grace_seconds 5) and leaves. */
  async leave(): Promise<void> {
    this.state = 'down';
    await this.process?.stop('SIGTERM', 20_000);
  }

  freeze(): void {
    if (this.state === 'running' && this.process?.signal('SIGSTOP')) this.state = 'frozen';
  }

  thaw(): void {
    if (this.state === 'frozen' && this.process?.signal('SIGCONT')) this.state = 'running';
  }
}

/**
 * The workers on the task queue: A is always meant to run (restarted after each kill); B
 * joins and leaves, so that two workers share the queue for parts of every run.
 */
export class Workers {
  readonly a: ChaosWorker;
  readonly b: ChaosWorker;
  /** Exits the harness did not cause, with the end of the worker's log. */
  readonly unexpectedExits: string[] = [];
  private readonly restarts = new Set<Promise<void>>();

  constructor(settings: WorkerSettings, ports: [number, number]) {
    const onExit = (worker: ChaosWorker, why: string) => {
      // Without the pid, so that the same crash twice reads the same (the report counts them).
      this.unexpectedExits.push(`worker ${worker.name} ${why}`);
      // Start it again, as a supervisor would; ensureHealthy() waits for it.
      const restart = worker
        .start()
        .catch((err: unknown) => {
          this.unexpectedExits.push(
            `worker ${worker.name} could not be started again: ${String(err)}`,
          );
        })
        .finally(() => this.restarts.delete(restart));
      this.restarts.add(restart);
    };
    this.a = new ChaosWorker('A', settings, ports[0], onExit);
    this.b = new ChaosWorker('B', settings, ports[1], onExit);
  }

  get all(): ChaosWorker[] {
    return [this.a, this.b];
  }

  /** Workers that are up and not frozen. */
  get running(): ChaosWorker[] {
    return this.all.filter((w) => w.state === 'running');
  }

  /** After a fault phase: every frozen worker continued, A running, restarts finished. */
  async ensureHealthy(): Promise<void> {
    for (const w of this.all) w.thaw();
    await Promise.all([...this.restarts]);
    await this.a.start();
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.all.map((w) => w.kill()));
  }
}
