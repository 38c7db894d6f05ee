import type { AuditTrail } from '../../../workflows';
import { ConfigError } from '../../shared/errors';
import {
  AUDIT_ACTIONS,
  auditTrailWorkflowId,
  type AuditAction,
  type AuditTrailInput,
} from '../../shared/audit-types';
import { isDay } from '../../shared/validate-types';
import type { AuditRecord } from '../../store/documents';
import { connectClient } from '../../temporal-client/connection';
import type { CommandContext } from './context';
import { formatTable } from './format';
import { cliRunMetadata, commandLine } from './run-metadata';

export interface AuditCommandOptions {
  database?: string;
  table?: string;
  action?: string[];
  startDate?: string;
  endDate?: string;
  limit?: number;
  json?: boolean;
}

function bad(message: string): never {
  throw new ConfigError(`audit: ${message}`);
}

function checkOptions(options: AuditCommandOptions): void {
  const unknown = (options.action ?? []).filter((a) => !AUDIT_ACTIONS.includes(a as AuditAction));
  if (unknown.length > 0)
    bad(`--action ${unknown.join(', ')}: expected one of ${AUDIT_ACTIONS.join(', ')}`);
  for (const [flag, value] of [
    ['--start-date', options.startDate],
    ['--end-date', options.endDate],
  ] as const) {
    if (value !== undefined && !isDay(value)) bad(`${flag} ${value}: expected YYYY-MM-DD`);
  }
  if (options.startDate && options.endDate && options.startDate > options.endDate)
    bad(`--start-date ${options.startDate} is after --end-date ${options.endDate}`);
}

/**
 * `audit verify` walks the audit trail's hash chain through the AuditTrail workflow and says
 * whether it is whole (exit 0) or names the first broken, missing or reordered record (exit
 * 1); `audit show` lists records with filters, oldest first.
 */
export async function auditCommand(
  ctx: CommandContext,
  verify: boolean,
  options: AuditCommandOptions,
): Promise<number> {
  checkOptions(options);
  if (!ctx.config.compliance.audit_trail.enabled)
    bad('compliance.audit_trail.enabled is false in the config: there is no trail to read');
  const input: AuditTrailInput = {
    verify,
    ...(options.database && { database: options.database }),
    ...(options.table && { table: options.table }),
    ...(options.action?.length && { actions: options.action }),
    ...(options.startDate && { startDate: options.startDate }),
    ...(options.endDate && { endDate: options.endDate }),
    ...(options.limit !== undefined && { limit: options.limit }),
  };
  const client = await connectClient(ctx.config.temporal, ctx.env);
  try {
    const result = await client.workflow.execute<typeof AuditTrail>('AuditTrail', {
      taskQueue: ctx.config.temporal.task_queue,
      workflowId: auditTrailWorkflowId(verify, new Date().toISOString()),
      args: [input],
      staticSummary: verify ? 'Verify the audit trail' : 'Show the audit trail',
      ...cliRunMetadata(ctx, {
        scope: 'the audit trail of the whole archive',
        command: commandLine(verify ? 'audit verify' : 'audit show', {
          database: options.database,
          table: options.table,
          action: options.action,
          'start-date': options.startDate,
          'end-date': options.endDate,
          limit: options.limit,
        }),
      }),
    });
    if (options.json) {
      ctx.out(JSON.stringify(result.kind === 'verified' ? result.verification : result));
      return result.kind === 'verified' && result.verification.problems.length > 0 ? 1 : 0;
    }
    if (result.kind === 'verified') {
      const { records, problems } = result.verification;
      if (problems.length === 0) {
        ctx.out(`audit trail intact: ${records} records, each chained to the one before`);
        return 0;
      }
      ctx.out(`audit trail broken: first problem at record ${problems[0]!.seq}`);
      for (const p of problems) ctx.out(`  ${p.key}: ${p.problem}`);
      return 1;
    }
    if (result.records.length === 0) {
      ctx.out('no audit records match');
      return 0;
    }
    ctx.out(formatTable(['seq', 'at', 'action', 'table', 'what', 'by'], result.records.map(row)));
    if (result.total > result.records.length)
      ctx.out(`(the newest ${result.records.length} of ${result.total}; --limit shows more)`);
    return 0;
  } finally {
    await client.connection.close();
  }
}

function row(r: AuditRecord): string[] {
  const table = r.table ? `${r.table.database} ${r.table.schema}.${r.table.table}` : '';
  return [String(r.seq), r.at, r.action, table, summary(r), r.actor.workflowId];
}

/** The few details that say what a record is about. */
function summary(r: AuditRecord): string {
  const d = r.details;
  const object = typeof d.object === 'string' ? d.object.split('/').pop() : undefined;
  const fields = ['rowCount', 'deleted', 'inserted', 'problemCount', 'id', 'ids', 'reason'];
  const parts = fields.flatMap((k) => {
    const value = d[k];
    if (value === undefined) return [];
    return [`${k} ${typeof value === 'string' ? value : JSON.stringify(value)}`];
  });
  return [object, ...parts].filter(Boolean).join(', ');
}
