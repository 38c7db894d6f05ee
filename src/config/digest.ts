import { createHash } from 'node:crypto';
import type { Config } from './schema';

/**
 * Keys whose value could be a secret itself rather than the name of where one is kept. The
 * config holds none today (passwords and keys come from `*_env` variables and `*_file`
 * files, whose names are not secret), but a value under such a key never reaches the digest.
 */
const SECRET_KEY = /(password|secret|token|api_key|private_key|webhook_url)$/i;

const digests = new WeakMap<Config, string>();

/**
 * A stable fingerprint of a parsed config: `sha256:` and the SHA-256 of its canonical JSON
 * (keys sorted at every level, values as parsed, defaults filled in), secrets left out, and
 * the `temporal` section left out too: it says where to connect, not what to archive, and
 * TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE override it per host, so the CLI on a laptop and a
 * worker in a cluster give the same digest for the same file. The
 * same settings give the same digest whatever the file's key order, comments or quoting, so
 * two runs with the same digest ran with the same settings. Runs carry it in their memo
 * (docs/web-ui.md). Computed once per parsed config.
 */
export function configDigest(config: Config): string {
  let digest = digests.get(config);
  if (!digest) {
    const what = canonicalJson({ ...config, temporal: undefined });
    digest = `sha256:${createHash('sha256').update(what).digest('hex')}`;
    digests.set(config, digest);
  }
  return digest;
}

/**
 * JSON with the keys of every object sorted and secret-looking keys left out; undefined
 * values are dropped as JSON.stringify drops them.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(canonical(value));
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : canonical(v)));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[key];
    if (v === undefined || SECRET_KEY.test(key)) continue;
    out[key] = canonical(v);
  }
  return out;
}
