import { readFileSync } from 'node:fs';
import { Client, Connection, type TLSConfig } from '@temporalio/client';
import type { Env, TemporalConfig } from '../config';
import { ConfigError } from '../shared/errors';

/** Options shared by the client Connection and the worker's NativeConnection. */
export interface TemporalConnectOptions {
  address: string;
  tls?: TLSConfig | boolean;
  apiKey?: string;
}

function readPem(file: string, setting: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError(
      `temporal.tls.${setting}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
}

/**
 * How to reach the configured Temporal server: plain for the local dev server, TLS or mTLS
 * from files named in the config, or an API key (Temporal Cloud) from the environment.
 */
export function temporalConnectOptions(config: TemporalConfig, env: Env): TemporalConnectOptions {
  const apiKey = env[config.api_key_env]?.trim() || undefined;
  const tls = config.tls;
  let tlsOption: TLSConfig | boolean | undefined;
  if (tls?.enabled) {
    tlsOption = {
      ...(tls.server_name !== undefined && { serverNameOverride: tls.server_name }),
      ...(tls.ca_file !== undefined && {
        serverRootCACertificate: readPem(tls.ca_file, 'ca_file'),
      }),
      ...(tls.cert_file !== undefined &&
        tls.key_file !== undefined && {
          clientCertPair: {
            crt: readPem(tls.cert_file, 'cert_file'),
            key: readPem(tls.key_file, 'key_file'),
          },
        }),
    };
  } else if (apiKey !== undefined && tls === undefined) {
    // An API key is only ever sent over TLS (Temporal Cloud requires it).
    tlsOption = true;
  }
  return {
    address: config.address,
    ...(tlsOption !== undefined && { tls: tlsOption }),
    ...(apiKey !== undefined && { apiKey }),
  };
}

/** A client for CLI commands; close `client.connection` when done. */
export async function connectClient(
  config: TemporalConfig,
  env: Env,
  connectTimeoutMs = 10_000,
): Promise<Client> {
  const connection = await Connection.connect({
    ...temporalConnectOptions(config, env),
    connectTimeout: connectTimeoutMs,
  });
  return new Client({ connection, namespace: config.namespace });
}

/**
 * The Web UI of the configured server: `temporal.web_ui_url`, or for a server on this
 * machine the dev server's default UI port.
 */
/**
 * Where the Web UI shows a workflow: its latest run, or with `runId` that run's history.
 * Undefined when no Web UI is known (webUiUrl).
 */
export function runLink(
  uiUrl: string | undefined,
  namespace: string,
  workflowId: string,
  runId?: string,
): string | undefined {
  if (uiUrl === undefined) return undefined;
  const workflow = `${uiUrl}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
  return runId === undefined ? workflow : `${workflow}/${encodeURIComponent(runId)}/history`;
}

export function webUiUrl(config: TemporalConfig): string | undefined {
  if (config.web_ui_url !== null) return config.web_ui_url.replace(/\/$/, '');
  const host = config.address.slice(0, config.address.lastIndexOf(':'));
  return ['127.0.0.1', 'localhost', '[::1]'].includes(host) ? `http://${host}:8233` : undefined;
}
