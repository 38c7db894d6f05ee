import type { S3Client } from '@aws-sdk/client-s3';
import type { Config, Env } from '../src/config';
import type { PoolRegistry } from '../src/postgres/pool';

/** What activities are given: built once by the worker entry point, shared by all. */
export interface ActivityDeps {
  config: Config;
  /** Where secrets named in the config are read from. */
  env: Env;
  pools: PoolRegistry;
  s3: S3Client;
}
