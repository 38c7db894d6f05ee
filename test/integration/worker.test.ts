import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SchemaSnapshot } from '../../src/store/documents';
import { createS3Client } from '../../src/store/client';
import { getText } from '../helpers/bucket';
import { temporal, TEMPORAL_NAMESPACE } from '../helpers/stack';
import { runCli, spawnCli } from '../helpers/cli';
import { freePort } from '../helpers/worker-process';
import { testConfig, testConfigInput, writeConfigFile } from '../helpers/config';
import { createAuditTable, TestDatabase } from '../helpers/database';

async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// The whole chain as an operator runs it: the `audit-archiver worker` process on the real
// Temporal server, started workflows from the project's CLI and from the Temporal CLI, the
// snapshot landing in MinIO, the worker's HTTP endpoint, and a graceful stop.
describe('worker process and SnapshotSchema through the real stack', function () {
  this.timeout(120_000);
  let db: TestDatabase;
  let worker: ChildProcess;
  let workerLog = '';
  let configFile: string;
  let s3: S3Client;
  let httpBase: string;
  const taskQueue = `test-worker-${randomUUID()}`;
  const prefix = `worker-${randomUUID()}/`;

  before(async () => {
    db = await TestDatabase.create();
    await createAuditTable(db, { rows: 20 });
    await createAuditTable(db, { schema: 'ops', table: 'Login Events', rows: 5 });
    const port = await freePort();
    httpBase = `http://127.0.0.1:${port}`;
    const options = {
      database: db.name,
      prefix,
      taskQueue,
      tables: [{ name: 'audit_log' }, { name: 'Login Events', schema: 'ops' }],
      overrides: (c: ReturnType<typeof testConfigInput>) => {
        c.worker = { http_address: `127.0.0.1:${port}`, shutdown_grace_seconds: 5 };
      },
    };
    configFile = writeConfigFile(testConfigInput(options));
    s3 = createS3Client(testConfig(options).s3);
    worker = spawnCli(['worker', '--config', configFile, '--log-level', 'info']);
    worker.stdout!.on('data', (d: Buffer) => (workerLog += d.toString()));
    worker.stderr!.on('data', (d: Buffer) => (workerLog += d.toString()));
    await waitFor('the worker to report healthy', async () => {
      const res = await fetch(`${httpBase}/healthz`);
      return res.status === 200 ? true : undefined;
    });
  });

  after(async () => {
    if (worker && worker.exitCode === null) worker.kill('SIGKILL');
    s3?.destroy();
    await db?.drop();
  });

  it('answers /healthz with its state and /metrics in Prometheus format', async () => {
    const health = (await (await fetch(`${httpBase}/healthz`)).json()) as Record<string, string>;
    assert.deepEqual(health, {
      status: 'ok',
      worker: 'RUNNING',
      namespace: TEMPORAL_NAMESPACE,
      taskQueue,
    });
    const metrics = await fetch(`${httpBase}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(
      await metrics.text(),
      /^audit_archiver_process_cpu_seconds_total\{service="audit-archiver"\} /m,
    );
  });

  it("stores every configured table's schema snapshot when `audit-archiver snapshot-schema` runs", async () => {
    const { code, stdout, stderr } = await runCli(['snapshot-schema', '--config', configFile]);
    assert.equal(code, 0, stderr);
    const keys = [...stdout.matchAll(/at s3:\/\/[^/]+\/(.+)$/gm)].map((m) => m[1]!);
    assert.equal(keys.length, 2, stdout);
    assert.match(
      keys[1]!,
      new RegExp(`^${prefix}${db.name}/ops\\.Login Events/_schema/[0-9a-f]{64}\\.json$`),
    );
    for (const key of keys) {
      const snapshot = JSON.parse((await getText(s3, key))!) as SchemaSnapshot;
      assert.equal(snapshot.database, db.name);
      assert.deepEqual(snapshot.primaryKey, ['id']);
    }
  });

  it('runs SnapshotSchema started with `temporal workflow start`, given only names', async () => {
    const workflowId = `raw-start-${randomUUID()}`;
    await temporal(
      'workflow',
      'start',
      '--type',
      'SnapshotSchema',
      '--task-queue',
      taskQueue,
      '--workflow-id',
      workflowId,
      '--input',
      JSON.stringify({ database: db.name, schema: 'public', table: 'audit_log' }),
    );
    const { stdout } = await temporal(
      'workflow',
      'result',
      '--workflow-id',
      workflowId,
      '--output',
      'json',
    );
    const { result } = JSON.parse(stdout) as { result: { key: string; columnCount: number } };
    assert.equal(result.columnCount, 5);
    const stored = JSON.parse((await getText(s3, result.key))!) as SchemaSnapshot;
    assert.equal(stored.table, 'audit_log');
  });

  it('exits at once with a clear error when its HTTP port is taken by another worker', async () => {
    // The running worker holds the port this config names.
    const second = await runCli(['worker', '--config', configFile], {}, 30_000);
    assert.equal(second.code, 1, second.stderr);
    assert.match(
      second.stderr,
      /^error: worker\.http_address 127\.0\.0\.1:\d+: address already in use/m,
    );
  });

  it('stops gracefully on SIGTERM, exit code 0', async () => {
    const exited = new Promise<number | null>((resolve) =>
      worker.on('exit', (code) => resolve(code)),
    );
    worker.kill('SIGTERM');
    assert.equal(await exited, 0, workerLog);
    assert.match(workerLog, /"msg":"worker stopped"/);
    assert.doesNotMatch(workerLog, /password/i);
  });
});
