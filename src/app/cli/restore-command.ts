import { WorkflowFailedError } from '@temporalio/client';
import type { Restore } from '../../../workflows';
import { selectTables } from '../../config';
import { ConfigError } from '../../shared/errors';
import { innermostMessage } from '../../shared/failures';
import { tablePath } from '../../shared/names';
import {
  CONFLICT_STRATEGIES,
  restoreWorkflowId,
  type ConflictStrategy,
  type RestoreInput,
  type RestorePlan,
  type RestoreResult,
} from '../../shared/restore-types';
import { connectClient } from '../../temporal-client/connection';
import type { CommandContext } from './context';
import { cliRunMetadata, commandLine } from './run-metadata';
import { listOrRelease } from './hold-command';
import { formatBytes, formatCount, formatTable, tableName } from './format';

export interface RestoreCommandOptions {
  database?: string;
  table?: string;
  s3Key?: string[];
  restoreAll?: boolean;
  startDate?: string;
  endDate?: string;
  conflictStrategy: string;
  ignoreWatermark?: boolean;
  targetTable?: string;
  dropMissingColumns?: boolean;
  allLines?: boolean;
  dryRun?: boolean;
  listHolds?: boolean;
  releaseHolds?: boolean;
  hold?: string[];
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

function checkOptions(options: RestoreCommandOptions): void {
  const bad = (message: string): never => {
    throw new ConfigError(`restore: ${message}`);
  };
  if (!options.database || !options.table) bad('--database and --table name the archived table');
  for (const [flag, value] of [
    ['--start-date', options.startDate],
    ['--end-date', options.endDate],
  ] as const) {
    if (value !== undefined && (!DAY.test(value) || Number.isNaN(Date.parse(value))))
      bad(`${flag} ${value}: expected a date as YYYY-MM-DD`);
  }
  if (options.startDate && options.endDate && options.startDate > options.endDate)
    bad('--start-date is after --end-date');
  if (!CONFLICT_STRATEGIES.includes(options.conflictStrategy as ConflictStrategy)) {
    bad(
      `--conflict-strategy ${options.conflictStrategy}: expected one of ${CONFLICT_STRATEGIES.join(', ')}`,
    );
  }
  if (options.s3Key?.length && options.restoreAll) bad('give --s3-key or --restore-all, not both');
  if (options.hold?.length && !options.releaseHolds) bad('--hold goes with --release-holds');
}

/**
 * Lists a table's archive (key, day, rows, rows deleted, size, restored or not), or restores
 * one object (--s3-key) or many (--restore-all), or lists or releases the holds restores
 * placed on the table. Everything goes through workflows on the worker: the CLI never
 * writes to the bucket itself. The plan is printed before any row is written.
 */
export async function restoreCommand(
  ctx: CommandContext,
  options: RestoreCommandOptions,
): Promise<number> {
  checkOptions(options);
  const tables = selectTables(ctx.config, { database: options.database, table: options.table });
  const [table] = tables;
  if (!table) throw new ConfigError(`restore: no table ${options.table}`);
  // A bare name configured in two schemas: restoring the first one found would be a guess.
  if (tables.length > 1) {
    throw new ConfigError(
      `restore: -t ${options.table} names ${tables.length} tables (${tables.map((t) => `${t.schema}.${t.name}`).join(', ')}); give schema.table`,
    );
  }
  const source = { database: table.database.name, schema: table.schema, table: table.name };
  const client = await connectClient(ctx.config.temporal, ctx.env);
  try {
    if (options.listHolds || options.releaseHolds)
      return await listOrRelease(ctx, client, source, {
        release: options.releaseHolds === true,
        ...(options.hold?.length && { holds: options.hold }),
      }).catch((err: unknown) => failed(ctx, err));
    const input: RestoreInput = {
      ...source,
      ...(options.s3Key?.length && { objects: options.s3Key }),
      ...(options.startDate && { startDate: options.startDate }),
      ...(options.endDate && { endDate: options.endDate }),
      ...(options.targetTable && { targetTable: options.targetTable }),
      conflict: options.conflictStrategy as ConflictStrategy,
      ignoreWatermark: options.ignoreWatermark === true,
      dropMissingColumns: options.dropMissingColumns === true,
      lines: options.allLines ? 'all' : 'deleted',
    };
    const run = (args: RestoreInput, workflowId: string) =>
      client.workflow.execute<typeof Restore>('Restore', {
        taskQueue: ctx.config.temporal.task_queue,
        workflowId,
        args: [args],
        staticSummary: `${args.dryRun ? 'Restore plan' : 'Restore'} of ${tableName(source)}`,
        ...cliRunMetadata(ctx, {
          scope: `${tableName(source)}${options.targetTable ? ` into ${options.targetTable}` : ''}`,
          rows: restoreRows(options),
          command: commandLine('restore', {
            database: options.database,
            table: options.table,
            's3-key': options.s3Key,
            'restore-all': options.restoreAll,
            'start-date': options.startDate,
            'end-date': options.endDate,
            'conflict-strategy': options.conflictStrategy,
            'ignore-watermark': options.ignoreWatermark,
            'target-table': options.targetTable,
            'drop-missing-columns': options.dropMissingColumns,
            'all-lines': options.allLines,
            'dry-run': args.dryRun === true,
          }),
        }),
      });
    const planOf = async (listAfter?: string): Promise<RestorePlan> => {
      const result = await run(
        { ...input, dryRun: true, ...(listAfter && { listAfter }) },
        `restore-plan/${tablePath(source)}/${new Date().toISOString()}`,
      );
      if (result.outcome !== 'dry-run') throw new Error('the restore plan wrote something');
      return result.plan;
    };
    const plan = await planOf();
    const writing = (options.s3Key?.length || options.restoreAll) && !options.dryRun;
    if (!(options.s3Key?.length || options.restoreAll)) return await list(ctx, plan, planOf);
    for (const line of plan.decision) ctx.out(line);
    if (!writing) {
      ctx.out('dry run: nothing was written');
      return 0;
    }
    if (plan.toRestore === 0) {
      ctx.out('nothing to restore');
      return 0;
    }
    const workflowId = restoreWorkflowId(plan.target);
    ctx.out(`restoring: workflow ${workflowId}`);
    const result = await run(input, workflowId);
    return printResult(ctx, result);
  } catch (err) {
    return failed(ctx, err);
  } finally {
    await client.connection.close();
  }
}

/** Which archived rows a restore takes, in words for its static details. */
function restoreRows(options: RestoreCommandOptions): string {
  const which = options.s3Key?.length
    ? `${options.s3Key.length} named object${options.s3Key.length === 1 ? '' : 's'}`
    : 'every archived object';
  const days =
    options.startDate || options.endDate
      ? `, days ${options.startDate ?? 'first'} to ${options.endDate ?? 'last'}`
      : '';
  const lines = options.allLines
    ? 'every archived row version'
    : 'the row versions the archive deleted';
  return `${which}${days}: ${lines}`;
}

/** Prints the archive's objects, a page (one plan workflow) at a time. */
async function list(
  ctx: CommandContext,
  first: RestorePlan,
  planOf: (after?: string) => Promise<RestorePlan>,
): Promise<number> {
  const into = `${first.target.schema}.${first.target.table}`;
  for (let plan = first; ;) {
    ctx.out(
      formatTable(
        ['object', 'day', 'rows', 'deleted', 'size', `restored into ${into}`],
        plan.page.map((o) => [
          o.object,
          o.day,
          formatCount(o.rows),
          o.deleted === null ? '-' : formatCount(o.deleted),
          formatBytes(o.bytes),
          o.restored ? 'yes' : 'no',
        ]),
      ),
    );
    if (!plan.more) break;
    plan = await planOf(plan.page.at(-1)!.object);
  }
  ctx.out(
    `${first.objects} objects; ${first.toRestore} would be restored (${formatCount(first.rows)} rows); restore one with --s3-key KEY, or all with --restore-all`,
  );
  return 0;
}

function printResult(ctx: CommandContext, result: RestoreResult): number {
  if (result.outcome === 'locked') {
    ctx.out(
      `restore refused: the table is locked by ${result.heldBy}; try again once that run ends`,
    );
    return 1;
  }
  if (result.outcome !== 'restored') return 0;
  ctx.out(
    `restored ${result.objects} objects, ${formatCount(result.rows)} rows: ${formatCount(result.inserted)} inserted, ${formatCount(result.overwritten)} overwritten, ${formatCount(result.skipped)} skipped (key exists), ${formatCount(result.identical)} already there`,
  );
  return 0;
}

function failed(ctx: CommandContext, err: unknown): number {
  if (!(err instanceof WorkflowFailedError)) throw err;
  ctx.out(`restore refused: ${innermostMessage(err)}`);
  return 1;
}
