import { proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ReleaseHoldsInput, ReleaseHoldsResult } from '../src/shared/restore-types';
import { tableSearchAttributes } from '../src/shared/search-attributes';
import { resolveTableRef } from '../src/shared/table-ref';
import { SHORT_IO } from './activity-options';
import { patienceInDetails } from './patience';
import { withOutcome } from './run-metadata';

const { releaseHolds } = proxyActivities<Activities>(SHORT_IO);

/**
 * Releases holds of a table, restores' and legal ones (all of them, or the ones named), so the
 * archive takes those days again; each release is recorded beside its hold, with who and
 * why. With dryRun, lists the holds in force. The CLI runs this instead of touching the
 * bucket itself.
 */
export async function ReleaseHolds(input: ReleaseHoldsInput): Promise<ReleaseHoldsResult> {
  const table = resolveTableRef(input);
  upsertSearchAttributes(tableSearchAttributes(table));
  const patience = patienceInDetails();
  return withOutcome(
    () =>
      patience.run('release holds', () =>
        releaseHolds({
          table,
          ...(input.holds && { holds: input.holds }),
          reason: input.reason ?? `released by ${workflowInfo().workflowId}`,
          ...(input.releasedBy !== undefined && { releasedBy: input.releasedBy }),
          dryRun: input.dryRun === true,
        }),
      ),
    (result) => (result.released ? 'released' : 'listed'),
  );
}
