import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { parseConfig, type Config } from '../../src/config';
import type { ConfigInput } from '../../src/config/schema';
import { BUCKET, MINIO_ENDPOINT, PG, TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE } from './stack';

export interface TestConfigOptions {
  database: string;
  tables?: { name: string; schema?: string; timestamp_column?: string; primary_key?: string }[];
  prefix: string;
  taskQueue?: string;
  overrides?: (config: ConfigInput) => void;
  /**
   * 'none' (the default for tests): batches follow each other without rests (`nice_ratio`
   * 0 and the impact controller off, unless the test sets them): a test machine's load would
   * otherwise pace the tests at random. 'default' keeps the product's pacing.
   */
  pacing?: 'none' | 'default';
}

/** A configuration for the local stack, as a user would write it. */
export function testConfigInput(options: TestConfigOptions): ConfigInput {
  const config: ConfigInput = {
    version: '2.0',
    temporal: {
      address: TEMPORAL_ADDRESS,
      namespace: TEMPORAL_NAMESPACE,
      task_queue: options.taskQueue ?? 'audit-archiver-test',
    },
    s3: { endpoint: MINIO_ENDPOINT, bucket: BUCKET, prefix: options.prefix, region: 'us-east-1' },
    defaults: { retention_days: 7, batch_size: 1000 },
    databases: [
      {
        name: options.database,
        host: PG.host,
        port: PG.port,
        user: PG.user,
        tables: (options.tables ?? [{ name: 'audit_log' }]).map((t) => ({
          name: t.name,
          schema: t.schema ?? 'public',
          timestamp_column: t.timestamp_column ?? 'created_at',
          primary_key: t.primary_key ?? 'id',
        })),
      },
    ],
    worker: { http_address: '127.0.0.1:0' },
  };
  options.overrides?.(config);
  if (options.pacing !== 'default') {
    const defaults = (config.defaults ??= {});
    defaults.throttle = { nice_ratio: 0, max_probe_slowdown: null, ...defaults.throttle };
  }
  return config;
}

export function testConfig(options: TestConfigOptions): Config {
  return parseConfig(stringify(testConfigInput(options)), 'test-config.yaml', {});
}

const written: string[] = [];

/** Removes the folders writeConfigFile made (a root hook calls it after the run). */
export function removeConfigFiles(): void {
  for (const dir of written.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Writes a configuration file for CLI tests and returns its path. */
export function writeConfigFile(
  content: ConfigInput | string,
  name = 'audit-archiver.yaml',
): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'aa-config-'));
  written.push(dir);
  const file = path.join(dir, name);
  writeFileSync(file, typeof content === 'string' ? content : stringify(content));
  return file;
}
