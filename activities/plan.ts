import { configDigest, findTable, selectTables, type TableFilter } from '../src/config';
import type { TablePlan } from '../src/shared/archive-types';
import type { RunPlan } from '../src/shared/run-types';
import { resolveTableRef, type TableRef } from '../src/shared/table-ref';
import type { ActivityDeps } from './deps';

/** Planning from the worker's config alone: no database, no bucket. Plans carry the config's digest. */
export function planActivities(deps: ActivityDeps) {
  const { config } = deps;
  return {
    /** The settings of a configured table that the workflow paces itself by. */
    planTable(input: TableRef): Promise<TablePlan> {
      const ref = resolveTableRef(input);
      const table = findTable(config, ref);
      return Promise.resolve({
        table: ref,
        retentionDays: table.retentionDays,
        batchSize: table.batchSize,
        pauseBetweenBatchesMs: table.pauseBetweenBatchesMs,
        configDigest: configDigest(config),
      });
    },

    /** The configured tables a run covers, and its parallelism; a filter that matches nothing is an error. */
    planRun(filter: TableFilter): Promise<RunPlan> {
      return Promise.resolve({
        tables: selectTables(config, filter).map((t) => ({
          database: t.database.name,
          schema: t.schema,
          table: t.name,
        })),
        limits: {
          maxParallelTables: config.archive.max_parallel_tables,
          maxParallelDatabases: config.archive.max_parallel_databases,
          maxParallelTablesPerDatabase: config.archive.max_parallel_tables_per_database,
        },
        configDigest: configDigest(config),
      });
    },
  };
}
