import { isGrpcServiceError, type Client } from '@temporalio/client';
import { SetupError } from '../../shared/errors';
import { scopeText, whenText } from '../../schedules/desired';
import {
  applySchedules,
  deleteSchedules,
  listSchedules,
  type ApplyOutcome,
  type DeleteOutcome,
  type ScheduleListing,
} from '../../schedules/manage';
import { connectClient, webUiUrl } from '../../temporal-client/connection';
import type { CommandContext } from './context';
import { formatTable } from './format';

export interface ScheduleApplyOptions {
  prune?: boolean;
  dryRun?: boolean;
}

export interface ScheduleListOptions {
  json?: boolean;
}

export interface ScheduleDeleteOptions {
  all?: boolean;
}

/** A client for the schedule commands; an unreachable server is one line naming it. */
async function connect(ctx: CommandContext): Promise<Client> {
  const { address, namespace } = ctx.config.temporal;
  let client: Client;
  try {
    client = await connectClient(ctx.config.temporal, ctx.env);
  } catch (err) {
    throw new SetupError(
      `cannot reach the Temporal server at ${address} (namespace ${namespace}): ${err instanceof Error ? err.message : String(err)}`,
      { address, namespace },
    );
  }
  // A wrong namespace would otherwise fail every schedule with the same line.
  try {
    await client.workflowService.describeNamespace({ namespace });
  } catch (err) {
    await client.connection.close();
    // gRPC status 5, NOT_FOUND.
    if (isGrpcServiceError(err) && Number(err.code) === 5) {
      throw new SetupError(
        `namespace ${namespace} does not exist on the Temporal server at ${address} (temporal.namespace, or TEMPORAL_NAMESPACE)`,
        { address, namespace },
      );
    }
    throw err;
  }
  return client;
}

async function withClient<T>(ctx: CommandContext, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = await connect(ctx);
  try {
    return await fn(client);
  } finally {
    await client.connection.close();
  }
}

const pad = (status: string) => status.padEnd(10);

function applyLines(o: ApplyOutcome, dryRun: boolean): string[] {
  const would = (verb: string) => (dryRun ? `would ${verb.replace(/d$/, '')}` : verb);
  switch (o.status) {
    case 'created':
      return [`${pad(would('created'))} ${o.id}: ${scopeText(o.view)}, ${whenText(o.view)}`];
    case 'updated':
      return [
        `${pad(would('updated'))} ${o.id}:`,
        ...o.changes.map((c) => `             ${c}`),
        ...o.notes.map((n) => `             ${n}`),
      ];
    case 'unchanged':
      return [`${pad('unchanged')} ${o.id}`, ...o.notes.map((n) => `             ${n}`)];
    case 'stale':
      return o.pruned
        ? [`${pad(dryRun ? 'would delete' : 'deleted')} ${o.id}: no longer in the config (--prune)`]
        : [`${pad('stale')} ${o.id}: no longer in the config; kept (apply --prune deletes it)`];
    case 'left alone':
      return [`${pad('left alone')} ${o.id}: ${o.reason}`];
    case 'failed':
      return [`${pad('FAILED')} ${o.id}: ${o.reason}`];
  }
}

/**
 * `schedule apply`: one line per schedule saying what changed, then a count. Exit 1 when a
 * configured schedule could not be applied.
 */
export async function scheduleApplyCommand(
  ctx: CommandContext,
  options: ScheduleApplyOptions,
): Promise<number> {
  const dryRun = options.dryRun === true;
  const outcomes = await withClient(ctx, (client) =>
    applySchedules(client, ctx.config, { prune: options.prune, dryRun }),
  );
  if (outcomes.length === 0) {
    ctx.out(
      'no schedules in the config, and none of this config in Temporal (see docs/schedules.md)',
    );
    return 0;
  }
  for (const o of outcomes) for (const line of applyLines(o, dryRun)) ctx.out(line);
  const kind = (o: ApplyOutcome) =>
    o.status === 'stale' && o.pruned ? (dryRun ? 'to delete' : 'deleted') : o.status;
  const count = (status: string) => outcomes.filter((o) => kind(o) === status).length;
  const parts = (
    [
      'created',
      'updated',
      'unchanged',
      'stale',
      'deleted',
      'to delete',
      'left alone',
      'failed',
    ] as const
  )
    .filter((s) => count(s) > 0)
    .map((s) => `${count(s)} ${s}`);
  ctx.out('');
  ctx.out(
    `${dryRun ? 'dry run, nothing changed: ' : ''}${parts.join(', ')} (namespace ${ctx.config.temporal.namespace}, task queue ${ctx.config.temporal.task_queue})`,
  );
  const ui = webUiUrl(ctx.config.temporal);
  if (ui && !dryRun)
    ctx.out(`see them in the Web UI: ${ui}/namespaces/${ctx.config.temporal.namespace}/schedules`);
  return count('failed') > 0 ? 1 : 0;
}

const time = (d: Date) => d.toISOString().replace(/\.\d+Z$/, 'Z');

/** `schedule list`: a table of this config's schedules, or --json. */
export async function scheduleListCommand(
  ctx: CommandContext,
  options: ScheduleListOptions,
): Promise<number> {
  const listing = await withClient(ctx, (client) => listSchedules(client, ctx.config));
  if (options.json) {
    ctx.out(JSON.stringify(listing, null, 2));
    return 0;
  }
  if (listing.length === 0) {
    ctx.out(
      'no schedules: add a `schedules:` section to the config and run `audit-archiver schedule apply` (docs/schedules.md)',
    );
    return 0;
  }
  ctx.out(
    formatTable(
      ['schedule', 'state', 'scope', 'when', 'paused', 'next runs', 'last run'],
      listing.map((s: ScheduleListing) => [
        s.id,
        s.state,
        s.scope,
        s.when,
        s.paused ? `yes${s.note ? ` (${s.note})` : ''}` : 'no',
        s.nextRuns.map(time).join(', ') || '-',
        s.lastRun ? `${time(s.lastRun.startedAt)} ${s.lastRun.outcome}` : '-',
      ]),
    ),
  );
  if (listing.some((s) => s.state !== 'in step'))
    ctx.out(
      '\n`audit-archiver schedule apply` brings them in step with the config (--prune also deletes stale ones)',
    );
  return 0;
}

function deleteLine(o: DeleteOutcome): string {
  switch (o.status) {
    case 'deleted':
      return `${pad('deleted')} ${o.id}${o.note ? ` (${o.note})` : ''}`;
    case 'not found':
      return `${pad('not found')} ${o.id}`;
    case 'left alone':
      return `${pad('left alone')} ${o.id}: ${o.reason}`;
  }
}

/**
 * `schedule delete <name>...` or `--all`. Exit 2 for a name that is no schedule, 1 when a
 * named schedule is not the archiver's (it is left alone).
 */
export async function scheduleDeleteCommand(
  ctx: CommandContext,
  names: string[],
  options: ScheduleDeleteOptions,
): Promise<number> {
  const outcomes = await withClient(ctx, (client) =>
    deleteSchedules(client, ctx.config, options.all ? { all: true } : { names }),
  );
  if (outcomes.length === 0) ctx.out('no schedules of this config to delete');
  for (const o of outcomes) ctx.out(deleteLine(o));
  if (outcomes.some((o) => o.status === 'not found')) {
    process.stderr.write(
      `error: no schedule ${outcomes
        .filter((o) => o.status === 'not found')
        .map((o) => o.id)
        .join(', ')} (\`audit-archiver schedule list\` shows them)\n`,
    );
    return 2;
  }
  // With --all, a schedule someone else made under the prefix was never asked for.
  return !options.all && outcomes.some((o) => o.status === 'left alone') ? 1 : 0;
}
