import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { Agent as HttpsAgent, get as httpsGet } from 'node:https';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { Connection } from '@temporalio/client';
import { devServerArgs } from '../../test/helpers/private-temporal';
import { ManagedProcess } from './processes';
import { sleep, waitUntil } from './util';

export const PROJECT_DIR = path.resolve(__dirname, '..', '..');
export const MINIO_USER = 'minioadmin';
export const MINIO_PASSWORD = 'minioadmin';

/** Where temporal/build-binaries.sh put a pinned binary (temporal/lib.sh binary_path). */
export function binaryPath(name: 'temporal' | 'minio' | 'toxiproxy'): string {
  const file = execFileSync('bash', ['-c', `source temporal/lib.sh && binary_path ${name}`], {
    cwd: PROJECT_DIR,
    encoding: 'utf8',
  }).trim();
  if (!existsSync(file))
    throw new Error(
      `${name} is not built yet (${file}): run \`npm run stack:build\` (or \`bash temporal/build-binaries.sh ${name}\`)`,
    );
  return file;
}

/** How a server is taken down: a crash (SIGKILL) or an orderly stop (SIGTERM). */
export type StopKind = 'SIGKILL' | 'SIGTERM';

/**
 * A server process of the harness's own: started, and restarted or stopped by a fault, with
 * `ready` saying when it serves.
 */
abstract class PrivateServer {
  protected abstract readonly process: ManagedProcess;
  protected abstract readonly readiness: { what: string; timeoutMs: number };

  /** True once the server serves; throws when it cannot (e.g. it exited). */
  protected abstract ready(): Promise<boolean | undefined>;

  get logFile(): string {
    return this.process.logFile;
  }

  async start(): Promise<void> {
    this.process.start();
    const { what, timeoutMs } = this.readiness;
    await waitUntil(what, timeoutMs, async () => {
      if (!this.process.running)
        throw new Error(`${this.process.name} exited (see ${this.logFile})`);
      return this.ready();
    });
  }

  async restart(how: StopKind, downMs: number): Promise<void> {
    await this.process.stop(how, 15_000);
    await sleep(downMs);
    await this.start();
  }

  async stop(): Promise<void> {
    await this.process.stop('SIGTERM', 10_000);
  }
}

/**
 * A MinIO server of the harness's own: its own data folder and ports; over https when given
 * a certificate folder (`public.crt`, `private.key`) and the CA that signed it.
 */
export class PrivateMinio extends PrivateServer {
  protected readonly process: ManagedProcess;
  protected readonly readiness = { what: 'MinIO to answer /minio/health/live', timeoutMs: 60_000 };
  private readonly agent: HttpsAgent | undefined;

  constructor(
    dir: string,
    readonly port: number,
    consolePort: number,
    tls?: { certsDir: string; ca: Buffer },
  ) {
    super();
    mkdirSync(path.join(dir, 'data'), { recursive: true });
    this.agent = tls && new HttpsAgent({ ca: tls.ca });
    this.process = new ManagedProcess(
      'minio',
      binaryPath('minio'),
      [
        'server',
        path.join(dir, 'data'),
        '--address',
        `127.0.0.1:${port}`,
        '--console-address',
        `127.0.0.1:${consolePort}`,
        '--quiet',
        ...(tls ? ['--certs-dir', tls.certsDir] : []),
      ],
      {
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          MINIO_ROOT_USER: MINIO_USER,
          MINIO_ROOT_PASSWORD: MINIO_PASSWORD,
          // Offline: no update checks, no call-home (as temporal/stack.sh starts it).
          MINIO_UPDATE: 'off',
          MINIO_CALLHOME_ENABLE: 'off',
        },
        logFile: path.join(dir, 'minio.log'),
      },
    );
  }

  get endpoint(): string {
    return `${this.agent ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  protected async ready(): Promise<boolean | undefined> {
    const url = `${this.endpoint}/minio/health/live`;
    if (!this.agent) return (await fetch(url)).ok ? true : undefined;
    const agent = this.agent;
    return new Promise((resolve) =>
      httpsGet(url, { agent }, (res) => {
        res.resume();
        resolve(res.statusCode === 200 ? true : undefined);
      }).on('error', () => resolve(undefined)),
    );
  }

  async createBucket(bucket: string, options: { objectLock?: boolean } = {}): Promise<void> {
    const s3 = this.client();
    try {
      await s3.send(
        new CreateBucketCommand({
          Bucket: bucket,
          ...(options.objectLock && { ObjectLockEnabledForBucket: true }),
        }),
      );
    } finally {
      s3.destroy();
    }
  }

  /** The harness's own S3 client: straight to MinIO, never through the fault proxies. */
  client(): S3Client {
    return new S3Client({
      region: 'us-east-1',
      endpoint: this.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: MINIO_USER, secretAccessKey: MINIO_PASSWORD },
      ...(this.agent && { requestHandler: { httpsAgent: this.agent } }),
    });
  }
}

/**
 * A Temporal dev server of the harness's own. Its history lives in a SQLite file in the
 * temporary folder, so a restart (even a SIGKILL) keeps every run, as a real cluster would.
 */
export class PrivateTemporal extends PrivateServer {
  protected readonly process: ManagedProcess;
  protected readonly readiness = {
    what: 'the Temporal dev server to serve namespace default',
    timeoutMs: 90_000,
  };

  constructor(
    dir: string,
    readonly port: number,
  ) {
    super();
    const args = devServerArgs(
      port,
      '--db-filename',
      path.join(dir, 'temporal.db'),
      // As temporal/stack.sh: workers report heartbeats only when the server accepts them.
      '--dynamic-config-value',
      'frontend.WorkerHeartbeatsEnabled=true',
      '--log-format',
      'json',
      '--namespace',
      'default',
    );
    this.process = new ManagedProcess('temporal', binaryPath('temporal'), args, {
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      logFile: path.join(dir, 'temporal.log'),
    });
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  protected async ready(): Promise<boolean> {
    const connection = await Connection.connect({ address: this.address, connectTimeout: 1_000 });
    try {
      await connection.workflowService.describeNamespace({ namespace: 'default' });
      return true;
    } finally {
      await connection.close();
    }
  }
}
