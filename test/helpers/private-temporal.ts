import { spawn, type ChildProcess } from 'node:child_process';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTE_KEYS } from '../../src/shared/search-attributes';
import { temporalCliPath } from './stack';
import { freePort } from './worker-process';

/**
 * The arguments of a headless `temporal server start-dev` on 127.0.0.1:`port` that logs only
 * errors and knows the archiver's search attributes, followed by `extra`.
 */
export function devServerArgs(port: number, ...extra: string[]): string[] {
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--headless',
    '--log-level',
    'error',
    ...extra,
  ];
  for (const key of SEARCH_ATTRIBUTE_KEYS) args.push('--search-attribute', `${key.name}=Keyword`);
  return args;
}

/**
 * A Temporal dev server of one test's own, keeping its data in memory only: stopping it
 * wipes every workflow history, as losing the Temporal server's disk would.
 */
export class PrivateTemporal {
  private constructor(
    readonly address: string,
    private readonly process: ChildProcess,
  ) {}

  static async start(): Promise<PrivateTemporal> {
    const port = await freePort();
    const args = devServerArgs(port);
    const child = spawn(temporalCliPath(), args, { stdio: 'ignore' });
    const address = `127.0.0.1:${port}`;
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null)
        throw new Error(`the Temporal dev server exited with ${child.exitCode}`);
      try {
        const connection = await Connection.connect({ address, connectTimeout: 1_000 });
        await connection.workflowService.describeNamespace({ namespace: 'default' });
        await connection.close();
        return new PrivateTemporal(address, child);
      } catch {
        if (Date.now() > deadline)
          throw new Error('the Temporal dev server did not start within 60 s');
        await new Promise((r) => setTimeout(r, 300));
      }
    }
  }

  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = new Promise((resolve) => this.process.once('exit', resolve));
    this.process.kill('SIGKILL');
    await exited;
  }
}
