import { randomBytes } from 'node:crypto';
import {
  Agent,
  createServer,
  request,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Rng } from './rng';

/**
 * What the proxy does to requests now:
 * - pass: forwards everything;
 * - slowdown: answers a share of requests itself with S3's `503 SlowDown`, without
 *   forwarding them (the store's way of saying "back off");
 * - error-after-write: forwards a share of writes and, once the store has done them, answers
 *   `500 InternalError` instead of the store's reply: the write happened but the client must
 *   not know it, as S3 allows for a 500.
 */
export type S3FaultMode =
  | { kind: 'pass' }
  | { kind: 'slowdown'; share: number }
  | { kind: 'error-after-write'; share: number };

// Request headers that belong to one hop: the proxy answers `Expect: 100-continue` itself.
const HOP_HEADERS = ['connection', 'keep-alive', 'expect', 'proxy-connection', 'upgrade'];

function s3Error(status: number, code: string, message: string, resource: string): string {
  const id = randomBytes(8).toString('hex').toUpperCase();
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><Resource>${resource.replace(/[<>&]/g, '')}</Resource><RequestId>${id}</RequestId><HostId>chaos</HostId></Error>`;
}

/**
 * A small HTTP proxy in front of MinIO for the faults toxiproxy cannot make: toxiproxy works
 * on TCP, but a store that throttles or fails answers with real S3 error documents, which the
 * SDK must retry by their codes. The path is worker -> toxiproxy -> this -> MinIO, so TCP
 * faults still hit the worker's own connections. Requests are forwarded byte for byte with
 * their Host header, so their SigV4 signatures stay valid.
 */
export class S3FaultProxy {
  private mode: S3FaultMode = { kind: 'pass' };
  private server: Server | undefined;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });
  /** Error replies the proxy made up, by code. */
  readonly answered = { SlowDown: 0, InternalError: 0 };

  constructor(
    readonly port: number,
    private readonly upstreamPort: number,
    private readonly rng: Rng,
  ) {}

  setMode(mode: S3FaultMode): void {
    this.mode = mode;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => this.handle(req, res));
    // Long uploads under a bandwidth toxic must not be cut by Node's own timeouts.
    server.requestTimeout = 0;
    server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', resolve);
    });
    this.server = server;
  }

  async stop(): Promise<void> {
    this.agent.destroy();
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const mode = this.mode;
    const write = req.method === 'PUT' || req.method === 'POST' || req.method === 'DELETE';
    if (mode.kind === 'slowdown' && this.rng.chance(mode.share)) {
      this.answered.SlowDown++;
      // Read the request to its end first, so the client sees an answer, not a reset.
      req.resume();
      req.once('end', () =>
        this.reply(res, req, 503, 'SlowDown', 'Please reduce your request rate.'),
      );
      req.once('error', () => res.destroy());
      return;
    }
    const failAfter = mode.kind === 'error-after-write' && write && this.rng.chance(mode.share);
    const headers: IncomingHttpHeaders = { ...req.headers };
    for (const name of HOP_HEADERS) delete headers[name];
    const upstream = request(
      {
        host: '127.0.0.1',
        port: this.upstreamPort,
        method: req.method,
        path: req.url,
        headers,
        agent: this.agent,
      },
      (up) => {
        if (failAfter) {
          this.answered.InternalError++;
          up.resume();
          up.once('end', () =>
            this.reply(
              res,
              req,
              500,
              'InternalError',
              'We encountered an internal error. Please try again.',
            ),
          );
          return;
        }
        const out: IncomingHttpHeaders = { ...up.headers };
        delete out.connection;
        delete out['keep-alive'];
        res.writeHead(up.statusCode ?? 502, out);
        up.pipe(res);
        up.once('error', () => res.destroy());
      },
    );
    // MinIO down or restarting: drop the client's connection, as a dead endpoint would.
    upstream.once('error', () => res.destroy());
    req.once('error', () => upstream.destroy());
    res.once('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }

  private reply(
    res: ServerResponse,
    req: IncomingMessage,
    status: number,
    code: string,
    message: string,
  ): void {
    const body = req.method === 'HEAD' ? '' : s3Error(status, code, message, req.url ?? '/');
    res.writeHead(status, {
      'content-type': 'application/xml',
      'content-length': Buffer.byteLength(body),
      'x-amz-request-id': randomBytes(8).toString('hex').toUpperCase(),
      ...(code === 'SlowDown' && { 'retry-after': '1' }),
    });
    res.end(body);
  }
}
