/** What an audit record says happened. */
export const AUDIT_ACTIONS = [
  'archive',
  'delete',
  'restore',
  'validate',
  'hold',
  'release',
  'legal-hold-skip',
  'schema-change',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** Input of the AuditTrail workflow: verify the chain, or list records that pass a filter. */
export interface AuditTrailInput {
  /** Walk the chain and report the first broken, missing or reordered record. */
  verify?: boolean;
  database?: string;
  /** `schema.table` or a bare table name. */
  table?: string;
  /** Only these actions (archive, delete, restore, validate, hold, release, ...). */
  actions?: string[];
  /** First and last UTC day of the records' time, inclusive (YYYY-MM-DD). */
  startDate?: string;
  endDate?: string;
  /** Most records returned, the newest (default 500). */
  limit?: number;
}

export const DEFAULT_AUDIT_LIMIT = 500;

/** `audit-trail/<verify|show>/<time>`. */
export function auditTrailWorkflowId(verify: boolean, at: string): string {
  return `audit-trail/${verify ? 'verify' : 'show'}/${at}`;
}
