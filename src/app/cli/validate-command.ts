import type { WorkflowHandle } from '@temporalio/client';
import type { Validate } from '../../../workflows';
import { selectTables } from '../../config';
import {
  validateWorkflowId,
  type ValidateInput,
  type ValidateProgress,
  type ValidateResult,
  type ValidateTableResult,
} from '../../shared/validate-types';
import { connectClient } from '../../temporal-client/connection';
import type { CommandContext } from './context';
import { cliRunMetadata, commandLine } from './run-metadata';
import { followWorkflow, queryQuietly } from './follow';
import { formatCount, formatTable, tableName } from './format';

export interface ValidateCommandOptions {
  database?: string;
  table?: string;
  startDate?: string;
  endDate?: string;
  sampleSize?: number;
  json?: boolean;
}

/**
 * Runs the Validate workflow through the Temporal server (a worker must be running), prints a
 * line as each table finishes, then every problem and a summary per table; `--json` prints
 * only the result. Exit 0 only when every check passed, 1 when any problem was found. The
 * caller has checked the dates; table names are checked here, before anything starts.
 */
export async function validateCommand(
  ctx: CommandContext,
  options: ValidateCommandOptions,
): Promise<number> {
  const tables = selectTables(ctx.config, options);
  const input: ValidateInput = {
    database: options.database,
    table: options.table,
    startDate: options.startDate,
    endDate: options.endDate,
    sampleSize: options.sampleSize,
  };
  const say = options.json ? () => undefined : ctx.out;
  const client = await connectClient(ctx.config.temporal, ctx.env);
  try {
    const workflowId = validateWorkflowId(options, new Date().toISOString());
    const handle = await client.workflow.start<typeof Validate>('Validate', {
      taskQueue: ctx.config.temporal.task_queue,
      workflowId,
      args: [input],
      staticSummary: `Validate archives${options.database ? ` of ${options.database}` : ''}${options.table ? ` ${options.table}` : ''}${rangeText(options)}`,
      ...cliRunMetadata(ctx, {
        scope: `${tables.length} table${tables.length === 1 ? '' : 's'}`,
        rows: `archived objects${rangeText(options) || ' of every day'}${options.sampleSize !== undefined ? `, ${options.sampleSize} rows sampled per table` : ''}`,
        command: commandLine('validate', {
          database: options.database,
          table: options.table,
          'start-date': options.startDate,
          'end-date': options.endDate,
          'sample-size': options.sampleSize,
        }),
      }),
    });
    say(`validation ${workflowId} started on task queue ${ctx.config.temporal.task_queue}`);
    const result = await follow(handle, say);
    if (options.json) ctx.out(JSON.stringify(result, null, 2));
    else report(result, ctx.out);
    return result.problems === 0 ? 0 : 1;
  } finally {
    await client.connection.close();
  }
}

function rangeText(options: ValidateCommandOptions): string {
  if (!options.startDate && !options.endDate) return '';
  return `, days ${options.startDate ?? 'first'} to ${options.endDate ?? 'last'}`;
}

function finishedLine(t: Omit<ValidateTableResult, 'problems'>): string {
  const status = t.problemCount === 0 ? 'ok' : `${t.problemCount} problems`;
  return `  ${tableName(t)}: ${formatCount(t.objects)} objects, ${formatCount(t.rows)} rows, ${t.sampled} sampled: ${status}`;
}

/** Prints a line as each table starts and as it finishes. */
async function follow(
  handle: WorkflowHandle<typeof Validate>,
  say: (line: string) => void,
): Promise<ValidateResult> {
  const started = new Set<string>();
  const printed = new Set<string>();
  const printNew = (finished: Omit<ValidateTableResult, 'problems'>[]) => {
    for (const t of finished) {
      if (printed.has(tableName(t))) continue;
      printed.add(tableName(t));
      say(finishedLine(t));
    }
  };
  const final = await followWorkflow<ValidateResult>(handle, async () => {
    const progress = await queryQuietly<ValidateProgress>(handle);
    for (const t of progress?.running ?? []) {
      if (started.has(tableName(t))) continue;
      started.add(tableName(t));
      say(`  checking ${tableName(t)}`);
    }
    if (progress) printNew(progress.finished);
  });
  // Tables that finished after the last query answered.
  printNew(final.tables.map(({ problems: _listed, ...t }) => t));
  return final;
}

function report(result: ValidateResult, out: (line: string) => void): void {
  const problems = result.tables.flatMap((t) => t.problems);
  if (problems.length > 0) {
    out('');
    for (const p of problems) out(`${p.key}: ${p.problem}`);
    for (const t of result.tables) {
      if (t.problemCount > t.problems.length) {
        out(`... and ${t.problemCount - t.problems.length} more problems in ${tableName(t)}`);
      }
    }
  }
  out('');
  out(
    formatTable(
      ['table', 'objects', 'rows', 'sampled', 'problems'],
      result.tables.map((t) => [
        tableName(t),
        formatCount(t.objects),
        formatCount(t.rows),
        String(t.sampled),
        formatCount(t.problemCount),
      ]),
    ),
  );
  out('');
  const objects = result.tables.reduce((sum, t) => sum + t.objects, 0);
  out(
    result.problems === 0
      ? `validation passed: ${result.tables.length} tables, ${formatCount(objects)} objects, every check passed`
      : `validation failed: ${formatCount(result.problems)} problems in ${result.tables.filter((t) => t.problemCount > 0).length} of ${result.tables.length} tables`,
  );
}
