import { RestoreRefusedError } from '../shared/errors';
import type { ReleaseHoldsResult } from '../shared/restore-types';
import type { TableArchive } from '../store/archive-store';
import { HOLD_RELEASE_FORMAT } from '../store/documents';

/**
 * Releases holds of a table (all, or the ones named), writing beside each a release record
 * with who and why, never deleting the hold; with dryRun, lists the holds in force.
 * Idempotent: a hold released already is no longer in force.
 */
export async function releaseHolds(
  archive: TableArchive,
  input: {
    holds?: string[];
    reason: string;
    releasedBy?: string;
    dryRun: boolean;
    workflowId: string;
  },
  released: (id: string) => void = () => undefined,
): Promise<ReleaseHoldsResult> {
  const inForce = await archive.holds();
  const unknown = (input.holds ?? []).filter((id) => !inForce.some((h) => h.id === id));
  if (unknown.length > 0)
    throw new RestoreRefusedError(`no hold in force with id ${unknown.join(', ')}`);
  const chosen = input.holds ? inForce.filter((h) => input.holds!.includes(h.id)) : inForce;
  if (!input.dryRun) {
    for (const hold of chosen) {
      await archive.saveHoldRelease({
        format: HOLD_RELEASE_FORMAT,
        id: hold.id,
        reason: input.reason,
        ...(input.releasedBy !== undefined && { releasedBy: input.releasedBy }),
        workflowId: input.workflowId,
        releasedAt: new Date().toISOString(),
      });
      released(hold.id);
    }
  }
  return {
    holds: chosen.map(({ id, kind, reason, days, placedBy, workflowId, createdAt }) => ({
      id,
      kind: kind ?? 'restore',
      reason,
      days,
      ...(placedBy !== undefined && { placedBy }),
      workflowId,
      createdAt,
    })),
    released: !input.dryRun,
  };
}
