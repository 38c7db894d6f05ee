import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ReadAuditTrailResult } from '../activities/audit';
import {
  AUDIT_ACTIONS,
  DEFAULT_AUDIT_LIMIT,
  type AuditAction,
  type AuditTrailInput,
} from '../src/shared/audit-types';
import { INVALID_INPUT } from '../src/shared/table-ref';

import { STREAMING } from './activity-options';
import { patienceInDetails } from './patience';
import { withOutcome } from './run-metadata';

const { readAuditTrail } = proxyActivities<Activities>(STREAMING);

/**
 * Verifies the audit trail's hash chain (`verify`), reporting the first broken, missing or
 * reordered record, or lists its records with filters, newest last. Reads only.
 */
export async function AuditTrail(given: AuditTrailInput = {}): Promise<ReadAuditTrailResult> {
  // `temporal workflow start` without --input passes null.
  const input = given ?? {};
  const unknown = (input.actions ?? []).filter((a) => !AUDIT_ACTIONS.includes(a as AuditAction));
  if (unknown.length > 0)
    throw ApplicationFailure.nonRetryable(
      `workflow input: actions: ${unknown.join(', ')} (expected ${AUDIT_ACTIONS.join(', ')})`,
      INVALID_INPUT,
    );
  const patience = patienceInDetails();
  return withOutcome(
    () =>
      patience.run('read the audit trail', () =>
        readAuditTrail({
          verify: input.verify === true,
          filter: {
            database: input.database,
            table: input.table,
            actions: input.actions as AuditAction[] | undefined,
            startDate: input.startDate,
            endDate: input.endDate,
          },
          limit: input.limit ?? DEFAULT_AUDIT_LIMIT,
        }),
      ),
    (result) =>
      result.kind === 'records'
        ? 'listed'
        : result.verification.problems.length > 0
          ? 'broken'
          : 'verified',
  );
}
