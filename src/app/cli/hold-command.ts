import { userInfo, hostname } from 'node:os';
import type { Client } from '@temporalio/client';
import type { PlaceHold, ReleaseHolds } from '../../../workflows';
import { NO_END } from '../../shared/archive-types';
import { selectTables, type ResolvedTable } from '../../config';
import { ConfigError } from '../../shared/errors';
import {
  placeHoldWorkflowId,
  releaseHoldsWorkflowId,
  type ReleaseHoldsResult,
} from '../../shared/restore-types';
import type { ResolvedTableRef } from '../../shared/table-ref';
import { isDay } from '../../shared/validate-types';
import { connectClient } from '../../temporal-client/connection';
import type { CommandContext } from './context';
import { tableName } from './format';
import { cliRunMetadata, commandLine } from './run-metadata';

export type HoldAction = 'place' | 'list' | 'release';

export interface HoldCommandOptions {
  database?: string;
  table?: string;
  reason?: string;
  since?: string;
  until?: string;
  by?: string;
  hold?: string[];
  json?: boolean;
}

/** Who the CLI user is when `--by` does not say: `user@host`. */
function defaultActor(): string {
  return `${userInfo().username}@${hostname()}`;
}

function bad(action: HoldAction, message: string): never {
  throw new ConfigError(`hold ${action}: ${message}`);
}

/** The one configured table -d and -t name. */
function oneTable(ctx: CommandContext, action: HoldAction, options: HoldCommandOptions) {
  if (!options.database || !options.table) bad(action, '--database and --table name the table');
  const tables = selectTables(ctx.config, { database: options.database, table: options.table });
  if (tables.length > 1)
    bad(
      action,
      `-t ${options.table} names ${tables.length} tables (${tables.map((t) => `${t.schema}.${t.name}`).join(', ')}); give schema.table`,
    );
  return tables[0]!;
}

/** Checks the options of one action; every mistake is bad input, found before anything runs. */
function checkOptions(action: HoldAction, options: HoldCommandOptions): void {
  if (action === 'place') {
    if (!options.reason?.trim()) bad(action, '--reason says why the rows are held');
    if (!options.since) bad(action, '--since names the first day held (YYYY-MM-DD)');
  }
  if (action === 'release' && !options.reason?.trim())
    bad(action, '--reason says why the hold ends');
  for (const [flag, value] of [
    ['--since', options.since],
    ['--until', options.until],
  ] as const) {
    if (value !== undefined && !isDay(value))
      bad(action, `${flag} ${value}: expected a day written YYYY-MM-DD`);
  }
  if (options.since && options.until && options.since > options.until)
    bad(action, `--since ${options.since} is after --until ${options.until}`);
  if (action !== 'release' && options.hold?.length) bad(action, '--hold goes with release');
}

/**
 * Places, lists or releases the legal holds of a table through the PlaceHold and ReleaseHolds
 * workflows (the CLI never writes to the bucket itself). The config's own legal_hold is
 * listed beside them; it ends only when the config says so.
 */
export async function holdCommand(
  ctx: CommandContext,
  action: HoldAction,
  options: HoldCommandOptions,
): Promise<number> {
  checkOptions(action, options);
  const table = oneTable(ctx, action, options);
  const ref = { database: table.database.name, schema: table.schema, table: table.name };
  const client = await connectClient(ctx.config.temporal, ctx.env);
  try {
    if (action === 'place') return await place(ctx, client, ref, options);
    if (action === 'list' && table.legalHold && !options.json) ctx.out(configHoldLine(table));
    return await listOrRelease(ctx, client, ref, {
      release: action === 'release',
      ...(options.hold?.length && { holds: options.hold }),
      ...(options.reason && { reason: options.reason }),
      releasedBy: options.by ?? defaultActor(),
      json: options.json === true,
    });
  } finally {
    await client.connection.close();
  }
}

async function place(
  ctx: CommandContext,
  client: Client,
  ref: ResolvedTableRef,
  options: HoldCommandOptions,
): Promise<number> {
  const days = { first: options.since!, last: options.until ?? NO_END };
  const result = await client.workflow.execute<typeof PlaceHold>('PlaceHold', {
    taskQueue: ctx.config.temporal.task_queue,
    workflowId: `${placeHoldWorkflowId(ref)}/${new Date().toISOString()}`,
    args: [{ ...ref, reason: options.reason!, days, placedBy: options.by ?? defaultActor() }],
    staticSummary: `Legal hold on ${tableName(ref)}`,
    ...cliRunMetadata(ctx, {
      scope: tableName(ref),
      rows: `days ${dayText(days)}`,
      command: commandLine('hold place', {
        database: options.database,
        table: options.table,
        reason: options.reason,
        since: options.since,
        until: options.until,
        by: options.by,
      }),
    }),
  });
  if (options.json) {
    ctx.out(JSON.stringify(result));
    return 0;
  }
  ctx.out(`placed legal hold ${result.id} on ${tableName(ref)}: ${dayText(days)}`);
  ctx.out(
    result.objectLock
      ? `  ${result.objectsLocked} archived objects of those days put under an Object Lock legal hold`
      : '  the bucket has no Object Lock: the rows are held, archived objects are not locked',
  );
  return 0;
}

/** Lists or releases the table's holds through the ReleaseHolds workflow. */
export async function listOrRelease(
  ctx: CommandContext,
  client: Client,
  ref: ResolvedTableRef,
  options: {
    release: boolean;
    holds?: string[];
    reason?: string;
    releasedBy?: string;
    json?: boolean;
  },
): Promise<number> {
  const result: ReleaseHoldsResult = await client.workflow.execute<typeof ReleaseHolds>(
    'ReleaseHolds',
    {
      taskQueue: ctx.config.temporal.task_queue,
      workflowId: `${releaseHoldsWorkflowId(ref)}/${new Date().toISOString()}`,
      args: [
        {
          ...ref,
          dryRun: !options.release,
          ...(options.holds && { holds: options.holds }),
          ...(options.reason && { reason: options.reason }),
          ...(options.releasedBy && { releasedBy: options.releasedBy }),
        },
      ],
      staticSummary: `${options.release ? 'Release' : 'List'} holds of ${tableName(ref)}`,
      ...cliRunMetadata(ctx, {
        scope: tableName(ref),
        command: commandLine(options.release ? 'hold release' : 'hold list', {
          database: ref.database,
          table: `${ref.schema}.${ref.table}`,
          hold: options.holds,
          reason: options.reason,
          by: options.releasedBy,
        }),
      }),
    },
  );
  if (options.json) {
    ctx.out(JSON.stringify(result));
    return 0;
  }
  if (result.holds.length === 0) {
    ctx.out('no holds in the bucket for this table');
    return 0;
  }
  for (const h of result.holds) {
    const by = h.placedBy ? `, by ${h.placedBy}` : '';
    ctx.out(
      `${result.released ? 'released' : 'held    '} ${h.id} (${h.kind}): ${h.days.map(dayText).join(', ')} (${h.reason}${by}, ${h.createdAt})`,
    );
  }
  if (result.objectsUnlocked !== undefined)
    ctx.out(`  Object Lock legal hold lifted from ${result.objectsUnlocked} archived objects`);
  return 0;
}

function dayText(d: { first: string; last: string }): string {
  if (d.first === d.last) return d.first;
  return d.last === NO_END ? `${d.first} onwards` : `${d.first}..${d.last}`;
}

function configHoldLine(table: ResolvedTable): string {
  const h = table.legalHold!;
  const ref = h.reference ? `, ${h.reference}` : '';
  return `held     config (legal, in the config file): ${dayText({ first: h.since, last: h.until ?? NO_END })} (${h.reason}${ref})`;
}
