import path from 'node:path';
import { ManagedProcess } from './processes';
import { binaryPath } from './servers';
import { waitUntil } from './util';

/** Toxic types of toxiproxy 2.5 that the harness uses, with their attributes. */
export type Toxic =
  | { type: 'latency'; attributes: { latency: number; jitter: number } }
  | { type: 'timeout'; attributes: { timeout: number } }
  | { type: 'reset_peer'; attributes: { timeout: number } }
  | { type: 'limit_data'; attributes: { bytes: number } }
  | { type: 'bandwidth'; attributes: { rate: number } }
  | { type: 'slicer'; attributes: { average_size: number; size_variation: number; delay: number } };

/** upstream: client to server (queries, uploads); downstream: server to client (replies). */
export type Stream = 'upstream' | 'downstream';

/**
 * The toxiproxy server (built from its pinned Go module like the stack's other servers) and
 * a client for its HTTP API. It is TCP-level: it delays, stalls, slices and cuts connections;
 * HTTP-level faults of the store are the S3 fault proxy's job.
 */
export class Toxiproxy {
  private readonly process: ManagedProcess;
  private toxicSeq = 0;

  constructor(
    dir: string,
    readonly apiPort: number,
  ) {
    this.process = new ManagedProcess(
      'toxiproxy',
      binaryPath('toxiproxy'),
      ['-host', '127.0.0.1', '-port', String(apiPort)],
      {
        env: { PATH: process.env.PATH, HOME: process.env.HOME },
        logFile: path.join(dir, 'toxiproxy.log'),
      },
    );
  }

  private get api(): string {
    return `http://127.0.0.1:${this.apiPort}`;
  }

  private async call(method: string, route: string, body?: unknown): Promise<unknown> {
    const res = await fetch(`${this.api}${route}`, {
      method,
      headers: { 'content-type': 'application/json' },
      ...(body !== undefined && { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`toxiproxy ${method} ${route}: HTTP ${res.status} ${text}`);
    return text === '' ? undefined : (JSON.parse(text) as unknown);
  }

  async start(): Promise<void> {
    this.process.start();
    await waitUntil('the toxiproxy API', 30_000, async () => {
      if (!this.process.running) throw new Error(`toxiproxy exited (see ${this.process.logFile})`);
      const res = await fetch(`${this.api}/version`);
      return res.ok ? true : undefined;
    });
  }

  async stop(): Promise<void> {
    await this.process.stop('SIGTERM', 5_000);
  }

  async createProxy(name: string, listenPort: number, upstreamPort: number): Promise<void> {
    await this.call('POST', '/proxies', {
      name,
      listen: `127.0.0.1:${listenPort}`,
      upstream: `127.0.0.1:${upstreamPort}`,
      enabled: true,
    });
  }

  /** Adds a toxic to every connection of the proxy, existing and new; returns its name. */
  async addToxic(proxy: string, stream: Stream, toxic: Toxic): Promise<string> {
    const name = `${toxic.type}_${stream}_${++this.toxicSeq}`;
    await this.call('POST', `/proxies/${proxy}/toxics`, {
      name,
      type: toxic.type,
      stream,
      toxicity: 1,
      attributes: toxic.attributes,
    });
    return name;
  }

  async removeToxic(proxy: string, name: string): Promise<void> {
    await this.call('DELETE', `/proxies/${proxy}/toxics/${name}`);
  }

  /** A disabled proxy refuses new connections and closes the ones it has: an outage. */
  async setEnabled(proxy: string, enabled: boolean): Promise<void> {
    await this.call('POST', `/proxies/${proxy}`, { enabled });
  }

  /** Every proxy enabled and every toxic removed: the safety net after a fault phase. */
  async reset(): Promise<void> {
    await this.call('POST', '/reset');
  }
}
