import type { Config, Env } from '../src/config';
import type { ArchiveMetrics } from '../src/metrics';
import type { PoolRegistry } from '../src/postgres/pool';
import type { SignalReader } from '../src/postgres/signals';
import type { ArchiveStore } from '../src/store/archive-store';

/** What activities are given: built once by the worker entry point, shared by all. */
export interface ActivityDeps {
  config: Config;
  /** Where secrets named in the config are read from. */
  env: Env;
  pools: PoolRegistry;
  /** The archive in the bucket: the activities' only way to it. */
  store: ArchiveStore;
  /**
   * Reads the database's load signals for throttling; default: its own views
   * (src/postgres/signals.ts). Tests pass a reader that adds replica lag, a WAL backlog or
   * a vacuum, which one test server cannot produce on demand.
   */
  readSignals?: SignalReader;
  /**
   * Where activities record the archive's metrics (served at the worker's /metrics); the
   * worker entry point builds it. Left out (tests), nothing is recorded.
   */
  metrics?: ArchiveMetrics;
}
