import type { Config, Env } from '../src/config';
import type { PoolRegistry } from '../src/postgres/pool';
import type { ArchiveStore } from '../src/store/archive-store';

/** What activities are given: built once by the worker entry point, shared by all. */
export interface ActivityDeps {
  config: Config;
  /** Where secrets named in the config are read from. */
  env: Env;
  pools: PoolRegistry;
  /** The archive in the bucket: the activities' only way to it. */
  store: ArchiveStore;
}
