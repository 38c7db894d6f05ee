import { temporal } from '@temporalio/proto';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { ArchiveAll } from '../../../workflows';
import type { ArchiveProgress } from '../../shared/archive-types';
import type { ArchiveRunProgress, ArchiveRunResult, TableResult } from '../../shared/run-types';
import { retentionRows } from '../../shared/run-metadata';
import { tableSearchAttributes } from '../../shared/search-attributes';
import type { ResolvedTableRef } from '../../shared/table-ref';
import { selectTables } from '../../config';
import { connectClient, runLink, webUiUrl } from '../../temporal-client/connection';
import type { CommandContext } from './context';
import { followWorkflow, queryQuietly } from './follow';
import { formatBytes, formatCount, formatDuration, formatTable, tableName } from './format';
import { cliRunMetadata, commandLine } from './run-metadata';

export interface ArchiveCommandOptions {
  database?: string;
  table?: string;
  dryRun?: boolean;
  wait: boolean;
}

/**
 * Starts an ArchiveAll run through the Temporal server and, unless --no-wait, follows it:
 * one line per table as it starts, progresses and finishes, then a summary table. Exit 1
 * when any table failed.
 */
export async function archiveCommand(
  ctx: CommandContext,
  options: ArchiveCommandOptions,
): Promise<number> {
  // Names are checked here first, so a typo fails at once with exit 2, not inside a workflow.
  const tables = selectTables(ctx.config, options);
  const client = await connectClient(ctx.config.temporal, ctx.env);
  try {
    const { namespace, task_queue: taskQueue } = ctx.config.temporal;
    const dryRun = options.dryRun === true;
    const workflowId = `${dryRun ? 'archive-dry-run' : 'archive-run'}/${new Date().toISOString()}`;
    const handle = await client.workflow.start<typeof ArchiveAll>('ArchiveAll', {
      taskQueue,
      workflowId,
      args: [{ database: options.database, table: options.table, dryRun }],
      // A run of one table is found by its table too, beside the table's own run.
      ...(tables.length === 1 && {
        typedSearchAttributes: tableSearchAttributes({
          database: tables[0]!.database.name,
          schema: tables[0]!.schema,
          table: tables[0]!.name,
        }),
      }),
      staticSummary: `${dryRun ? 'Dry run' : 'Archive run'}${options.database ? ` of ${options.database}` : ''}${options.table ? ` ${options.table}` : ''}`,
      ...cliRunMetadata(ctx, {
        scope: `${tables.length} table${tables.length === 1 ? '' : 's'}: ${listed(tables.map((t) => `${t.database.name} ${t.schema}.${t.name}`))}`,
        rows: rowsOf(tables),
        command: commandLine('archive', {
          database: options.database,
          table: options.table,
          'dry-run': dryRun,
        }),
      }),
    });
    const link = runLink(webUiUrl(ctx.config.temporal), namespace, workflowId);
    ctx.out(
      `${dryRun ? 'dry run' : 'archive run'} ${workflowId} started on task queue ${taskQueue}`,
    );
    if (link) ctx.out(`  follow it in the Web UI: ${link}`);
    if (!(await hasWorker(client, namespace, taskQueue))) {
      ctx.out(
        `  no worker polls task queue ${taskQueue} yet: start one with \`audit-archiver worker --config ${ctx.configPath}\``,
      );
    }
    if (!options.wait) return 0;

    const result = await follow(ctx, handle);
    ctx.out('');
    ctx.out(dryRun ? dryRunSummary(result.tables) : archiveSummary(result.tables));
    const failed = result.tables.filter((t) => t.outcome === 'failed');
    ctx.out('');
    ctx.out(
      failed.length === 0
        ? `${dryRun ? 'dry run' : 'archive run'} finished: ${result.tables.length} tables, none failed${dryRun ? '; nothing was written' : ''}`
        : `${failed.length} of ${result.tables.length} tables failed`,
    );
    return failed.length === 0 ? 0 : 1;
  } finally {
    await client.connection.close();
  }
}

/** The first few names, then how many more: static details stay short. */
function listed(names: string[], most = 8): string {
  const more = names.length - most;
  return names.slice(0, most).join(', ') + (more > 0 ? `, and ${more} more` : '');
}

/** Which rows the run archives: older than each table's retention, which fixes its cutoff. */
function rowsOf(tables: { retentionDays: number }[]): string {
  const days = [...new Set(tables.map((t) => t.retentionDays))];
  return retentionRows(days.length === 1 ? days[0] : undefined);
}

async function hasWorker(client: Client, namespace: string, taskQueue: string): Promise<boolean> {
  const { pollers } = await client.workflowService.describeTaskQueue({
    namespace,
    taskQueue: { name: taskQueue },
    taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  return (pollers?.length ?? 0) > 0;
}

/** Prints a line whenever a table starts, moves to another day, or finishes. */
async function follow(
  ctx: CommandContext,
  handle: WorkflowHandle<typeof ArchiveAll>,
): Promise<ArchiveRunResult> {
  const printed = new Set<string>();
  const lastLine = new Map<string, string>();
  const final = await followWorkflow<ArchiveRunResult>(handle, async () => {
    const progress = await queryQuietly<ArchiveRunProgress>(handle);
    for (const t of progress?.finished ?? []) {
      if (printed.has(t.workflowId)) continue;
      printed.add(t.workflowId);
      ctx.out(finishedLine(t));
    }
    for (const r of progress?.running ?? []) {
      const child = await queryQuietly<ArchiveProgress>(handle.client.getHandle(r.workflowId));
      if (!child || printed.has(r.workflowId)) continue;
      const line = progressLine(r.table, child);
      if (lastLine.get(r.workflowId) !== line) ctx.out(line);
      lastLine.set(r.workflowId, line);
    }
  });
  for (const t of final.tables) if (!printed.has(t.workflowId)) ctx.out(finishedLine(t));
  return final;
}

/** One line of a running table: its state, day and rows; what it waits for while a fault lasts. */
function progressLine(table: ResolvedTableRef, p: ArchiveProgress): string {
  if (p.waiting) {
    return `  ${'waiting'.padEnd(16)} ${tableName(table)}: ${p.waiting.step} waits out a fault since ${p.waiting.since}: ${p.waiting.lastError}`;
  }
  const where = p.currentDay ? `, day ${p.currentDay}` : '';
  return `  ${p.state.padEnd(16)} ${tableName(table)}${where}, ${formatCount(p.totals.rowsArchived)} rows archived`;
}

function finishedLine(t: TableResult): string {
  switch (t.outcome) {
    case 'archived':
      return `  archived         ${tableName(t)}: ${formatCount(t.rowsArchived ?? 0)} rows in ${t.objects ?? 0} objects, ${formatBytes(t.bytes ?? 0)}, ${formatDuration(t.durationMs)}${skippedNote(t)}`;
    case 'dry-run':
      return `  would archive    ${tableName(t)}: ${formatCount(t.estimate?.rows ?? 0)} rows`;
    case 'failed':
      return `  FAILED           ${tableName(t)}: ${t.reason ?? 'unknown reason'}`;
    default:
      return `  ${t.outcome.padEnd(16)} ${tableName(t)}: ${t.reason ?? ''}`;
  }
}

/** Old rows a run left in the table because the archive cannot take them, and why. */
function skippedNote(t: TableResult): string {
  const notes = [
    t.skipped?.nullKey && `${formatCount(t.skipped.nullKey)} with a NULL key`,
    t.skipped?.outOfRange &&
      `${formatCount(t.skipped.outOfRange)} dated -infinity or before year 1`,
    ...(t.skipped?.held ?? []).map(
      (h) =>
        `${formatCount(h.rows)} of ${h.days.first}..${h.days.last} under legal hold ${h.hold} (${h.reason})${h.objectsLocked > 0 ? `, ${h.objectsLocked} archived objects locked` : ''}`,
    ),
  ].filter(Boolean);
  return notes.length > 0 ? `; left in the table: ${notes.join(', ')}` : '';
}

function archiveSummary(tables: TableResult[]): string {
  return formatTable(
    [
      'table',
      'outcome',
      'rows archived',
      'rows deleted',
      'objects',
      'bytes',
      'duration',
      'workflow',
    ],
    tables.map((t) => [
      tableName(t),
      t.outcome,
      formatCount(t.rowsArchived ?? 0),
      formatCount(t.rowsDeleted ?? 0),
      String(t.objects ?? 0),
      formatBytes(t.bytes ?? 0),
      formatDuration(t.durationMs),
      t.workflowId,
    ]),
  );
}

function dryRunSummary(tables: TableResult[]): string {
  return formatTable(
    ['table', 'rows to archive', 'oldest', 'newest', 'days', 'est. compressed', 'note'],
    tables.map((t) => [
      tableName(t),
      formatCount(t.estimate?.rows ?? 0),
      t.estimate?.firstTimestamp ?? '-',
      t.estimate?.lastTimestamp ?? '-',
      String(t.estimate?.days.length ?? 0),
      formatBytes(t.estimate?.estimatedBytes ?? 0),
      t.outcome === 'dry-run' ? '' : `${t.outcome}: ${t.reason ?? ''}`,
    ]),
  );
}
