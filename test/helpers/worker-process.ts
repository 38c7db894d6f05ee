import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { spawnCli } from './cli';

/** A TCP port that was free a moment ago, for a worker's HTTP endpoint. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Polls `fn` until it returns something other than undefined; errors count as "not yet". */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 200));
  }
}

/**
 * A real `audit-archiver worker` process, started from the sources. Its HTTP endpoint must be
 * configured at `httpAddress`; start() returns once /healthz says the worker is running.
 * The Temporal worker identity of the process is `{pid}@{host}` (the SDK's default), which
 * lets a test see which process runs an activity.
 */
export class WorkerProcess {
  log = '';
  private readonly exited: Promise<void>;

  private constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (d: Buffer) => (this.log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.log += d.toString()));
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  static async start(
    configFile: string,
    httpAddress: string,
    options: { timeoutMs?: number } = {},
  ): Promise<WorkerProcess> {
    const proc = new WorkerProcess(spawnCli(['worker', '--config', configFile]));
    try {
      await waitFor(
        'the worker process to report healthy',
        async () => {
          if (proc.child.exitCode !== null)
            throw new Error(`worker exited with ${proc.child.exitCode}`);
          const res = await fetch(`http://${httpAddress}/healthz`);
          return res.status === 200 ? true : undefined;
        },
        { timeoutMs: options.timeoutMs ?? 60_000 },
      );
    } catch (err) {
      await proc.kill();
      throw new Error(`${(err as Error).message}\n--- worker log ---\n${proc.log}`, { cause: err });
    }
    return proc;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGKILL: no shutdown hook, no drain, no goodbye to Temporal or PostgreSQL. */
  async kill(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }
}
