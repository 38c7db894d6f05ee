import { createServer, type Server } from 'node:http';
import { collectDefaultMetrics, Registry } from 'prom-client';

/** The worker's Prometheus registry: process metrics now, archive-stage metrics as stages land. */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service: 'audit-archiver' });
  collectDefaultMetrics({ register: registry, prefix: 'audit_archiver_' });
  return registry;
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
