import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PrivatePostgres } from './postgres';
import type { Rng } from './rng';
import { S3FaultProxy } from './s3-fault-proxy';
import { PrivateMinio, PrivateTemporal } from './servers';
import { Toxiproxy } from './toxiproxy';
import { freePort } from './util';
import type { WorkerSettings } from './workers';

/** Names the harness's scenario uses; nothing here is shared with other test runs. */
export const SCENARIO = {
  database: 'chaos',
  table: 'audit_log',
  bucket: 'chaos-archive',
  prefix: 'archive/',
  taskQueue: 'audit-archiver-chaos',
  retentionDays: 7,
} as const;

/**
 * The private stack: PostgreSQL, MinIO, a Temporal dev server and toxiproxy, all in one
 * temporary folder on ports of their own. The workers reach PostgreSQL and MinIO only through
 * toxiproxy (MinIO behind the S3 fault proxy as well); the harness's own checks go direct.
 *
 *   worker --> toxiproxy "postgres" ------------------> PostgreSQL
 *   worker --> toxiproxy "s3" --> S3 fault proxy -----> MinIO
 *   worker --> Temporal (restarted by faults, never proxied)
 */
export class ChaosStack {
  readonly database = SCENARIO.database;

  private constructor(
    readonly dir: string,
    readonly pg: PrivatePostgres,
    readonly minio: PrivateMinio,
    readonly temporal: PrivateTemporal,
    readonly toxiproxy: Toxiproxy,
    readonly s3Proxy: S3FaultProxy,
    readonly pgProxyPort: number,
    readonly s3ProxyPort: number,
  ) {}

  /** Creates the folder and ports; `started` gets the stack as soon as it exists, for teardown. */
  static async start(rng: Rng, started: (stack: ChaosStack) => void): Promise<ChaosStack> {
    const dir = mkdtempSync(path.join(tmpdir(), 'audit-archiver-chaos-'));
    // The cluster runs as `postgres`, which must reach its folder inside this one.
    chmodSync(dir, 0o755);
    const ports: number[] = [];
    while (ports.length < 8) {
      const port = await freePort();
      if (!ports.includes(port)) ports.push(port);
    }
    const [pgPort, minioPort, consolePort, temporalPort, toxiPort, faultPort, pgProxy, s3Proxy] =
      ports as [number, number, number, number, number, number, number, number];
    const stack = new ChaosStack(
      dir,
      new PrivatePostgres(path.join(dir, 'postgres'), pgPort),
      new PrivateMinio(path.join(dir, 'minio'), minioPort, consolePort),
      new PrivateTemporal(dir, temporalPort),
      new Toxiproxy(dir, toxiPort),
      new S3FaultProxy(faultPort, minioPort, rng),
      pgProxy,
      s3Proxy,
    );
    started(stack);
    await Promise.all([
      stack.pg.init(),
      stack.minio.start().then(() => stack.minio.createBucket(SCENARIO.bucket)),
      stack.temporal.start(),
      stack.toxiproxy.start(),
      stack.s3Proxy.start(),
    ]);
    await stack.toxiproxy.createProxy('postgres', pgProxy, pgPort);
    await stack.toxiproxy.createProxy('s3', s3Proxy, faultPort);
    return stack;
  }

  workerSettings(batchSize: number): WorkerSettings {
    return {
      dir: this.dir,
      temporalAddress: this.temporal.address,
      taskQueue: SCENARIO.taskQueue,
      pgPort: this.pgProxyPort,
      s3Port: this.s3ProxyPort,
      bucket: SCENARIO.bucket,
      prefix: SCENARIO.prefix,
      database: SCENARIO.database,
      table: SCENARIO.table,
      retentionDays: SCENARIO.retentionDays,
      batchSize,
    };
  }

  /** Every network fault taken away: proxies enabled, toxics gone, the store answering. */
  async healNetwork(): Promise<void> {
    await this.toxiproxy.reset();
    this.s3Proxy.setMode({ kind: 'pass' });
  }

  /** Stops everything; the folder goes too unless `keep`. Never throws. */
  async teardown(keep: boolean): Promise<void> {
    await Promise.allSettled([
      this.temporal.stop(),
      this.minio.stop(),
      this.toxiproxy.stop(),
      this.s3Proxy.stop(),
    ]);
    this.pg.stopSync();
    if (!keep) rmSync(this.dir, { recursive: true, force: true });
  }

  /** For process.on('exit'): the cluster is a daemon of pg_ctl, not a child of the harness. */
  teardownSync(): void {
    this.pg.stopSync();
  }
}
