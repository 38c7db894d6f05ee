import { hostname } from 'node:os';
import { activityInfo } from '@temporalio/activity';
import type { AuditFilter, AuditVerification } from '../src/store/audit-trail';
import type { AuditAction } from '../src/shared/audit-types';
import type { AuditRecord } from '../src/store/documents';
import type { TableNames } from '../src/shared/names';
import type { ActivityDeps } from './deps';
import { heartbeating } from './heartbeat';

/** This worker process as Temporal names workers by default: pid@host. */
const WORKER = `${process.pid}@${hostname()}`;

/**
 * Appends a record of what the running activity did to the audit trail (when the config
 * keeps one): who (this worker, the workflow run), what and when. Called as a step's last
 * write, so that a step that failed before it wrote nothing; a step retried after writing it
 * writes the same `event` again, which readers can tell apart.
 */
export async function recordAudit(
  deps: ActivityDeps,
  action: AuditAction,
  event: string,
  table: TableNames | null,
  details: Record<string, unknown>,
): Promise<void> {
  if (!deps.store.audit) return;
  const run = activityInfo().workflowExecution;
  await deps.store.audit.append({
    at: new Date().toISOString(),
    action,
    event,
    actor: { worker: WORKER, workflowId: run?.workflowId ?? '', runId: run?.runId ?? '' },
    table: table && { database: table.database, schema: table.schema, table: table.table },
    details,
  });
}

export interface ReadAuditTrailInput {
  verify: boolean;
  filter: AuditFilter;
  /** Most records returned (the newest), when not verifying. */
  limit: number;
}

export type ReadAuditTrailResult =
  | { kind: 'verified'; verification: AuditVerification }
  | { kind: 'records'; records: AuditRecord[]; total: number };

export function auditActivities(deps: ActivityDeps) {
  return {
    /** Verifies the audit trail's chain, or lists its records (src/store/audit-trail.ts). Reads only. */
    readAuditTrail(input: ReadAuditTrailInput): Promise<ReadAuditTrailResult> {
      return heartbeating(async () => {
        const trail = deps.store.audit;
        if (!trail) return { kind: 'records', records: [], total: 0 };
        if (input.verify) return { kind: 'verified', verification: await trail.verify() };
        const records = await trail.read(input.filter);
        return { kind: 'records', records: records.slice(-input.limit), total: records.length };
      });
    },
  };
}
