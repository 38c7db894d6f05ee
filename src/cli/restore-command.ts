import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import type { Restore } from '../../workflows';
import { listKeys } from '../archive/catalog';
import { holdsPrefix } from '../archive/layout';
import { selectTables } from '../config';
import { createS3Client } from '../s3/client';
import { ConfigError } from '../shared/errors';
import {
  CONFLICT_STRATEGIES,
  restoreWorkflowId,
  type ConflictStrategy,
  type RestoreInput,
  type RestoreResult,
} from '../shared/restore-types';
import { connectClient } from '../temporal/connection';
import type { CommandContext } from './context';
import { formatBytes, formatCount, formatTable } from './format';

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
  dryRun?: boolean;
  releaseHolds?: boolean;
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
}

/**
 * Lists a table's archive (key, day, rows, size, restored or not), or restores one object
 * (--s3-key) or many (--restore-all). The plan, with how archived columns map onto the
 * target, is printed before any row is written.
 */
export async function restoreCommand(
  ctx: CommandContext,
  options: RestoreCommandOptions,
): Promise<number> {
  checkOptions(options);
  const [table] = selectTables(ctx.config, { database: options.database, table: options.table });
  if (!table) throw new ConfigError(`restore: no table ${options.table}`);
  const source = { database: table.database.name, schema: table.schema, table: table.name };
  if (options.releaseHolds) return releaseHolds(ctx, source);

  const input: RestoreInput = {
    ...source,
    ...(options.s3Key?.length && { objects: options.s3Key }),
    ...(options.startDate && { startDate: options.startDate }),
    ...(options.endDate && { endDate: options.endDate }),
    ...(options.targetTable && { targetTable: options.targetTable }),
    conflict: options.conflictStrategy as ConflictStrategy,
    ignoreWatermark: options.ignoreWatermark === true,
    dropMissingColumns: options.dropMissingColumns === true,
  };
  const writing = (options.s3Key?.length || options.restoreAll) && !options.dryRun;
  const client = await connectClient(ctx.config.temporal, ctx.env);
  try {
    const run = (dryRun: boolean, workflowId: string) =>
      client.workflow.execute<typeof Restore>('Restore', {
        taskQueue: ctx.config.temporal.task_queue,
        workflowId,
        args: [{ ...input, dryRun }],
        staticSummary: `${dryRun ? 'Restore plan' : 'Restore'} of ${source.database} ${source.schema}.${source.table}`,
      });
    const plan = await run(
      true,
      `restore-plan/${source.database}/${source.schema}.${source.table}/${new Date().toISOString()}`,
    ).catch(failed);
    if (typeof plan === 'number') return plan;
    const listing = !(options.s3Key?.length || options.restoreAll);
    if (listing) {
      ctx.out(
        formatTable(
          [
            'object',
            'day',
            'rows',
            'size',
            `restored into ${plan.plan.target.schema}.${plan.plan.target.table}`,
          ],
          plan.plan.objects.map((o) => [
            o.object,
            o.day,
            formatCount(o.rows),
            formatBytes(o.bytes),
            o.restored ? 'yes' : 'no',
          ]),
        ),
      );
      ctx.out(
        `${plan.plan.objects.length} objects; restore one with --s3-key KEY, or all with --restore-all`,
      );
      return 0;
    }
    for (const line of plan.plan.decision) ctx.out(line);
    if (!writing) {
      ctx.out('dry run: nothing was written');
      return 0;
    }
    if (plan.plan.toRestore.length === 0) {
      ctx.out('nothing to restore');
      return 0;
    }
    const workflowId = restoreWorkflowId(plan.plan.target);
    ctx.out(`restoring: workflow ${workflowId}`);
    const result = await run(false, workflowId).catch(failed);
    if (typeof result === 'number') return result;
    printTotals(ctx, result);
    return 0;
  } finally {
    await client.connection.close();
  }

  function failed(err: unknown): number {
    if (!(err instanceof WorkflowFailedError)) throw err;
    let cause: unknown = err;
    while (cause instanceof Error && cause.cause instanceof Error) cause = cause.cause;
    ctx.out(`restore refused: ${cause instanceof Error ? cause.message : String(cause)}`);
    return 1;
  }
}

function printTotals(ctx: CommandContext, result: RestoreResult): void {
  if (result.outcome !== 'restored') return;
  ctx.out(
    `restored ${result.objects} objects, ${formatCount(result.rows)} rows: ${formatCount(result.inserted)} inserted, ${formatCount(result.overwritten)} overwritten, ${formatCount(result.skipped)} skipped (key exists), ${formatCount(result.identical)} already there`,
  );
}

/** Deletes the table's holds, so the archive takes the held days again. */
async function releaseHolds(
  ctx: CommandContext,
  source: { database: string; schema: string; table: string },
): Promise<number> {
  const s3 = createS3Client(ctx.config.s3);
  try {
    const keys = await listKeys(
      s3,
      ctx.config.s3.bucket,
      holdsPrefix({ prefix: ctx.config.s3.prefix, ...source }),
    );
    for (const key of keys.keys()) {
      await s3.send(new DeleteObjectCommand({ Bucket: ctx.config.s3.bucket, Key: key }));
      ctx.out(`released ${key}`);
    }
    if (keys.size === 0) ctx.out('no holds on this table');
    return 0;
  } finally {
    s3.destroy();
  }
}
