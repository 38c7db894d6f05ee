import { activityInfo, log } from '@temporalio/activity';
import { findTable } from '../src/config';
import {
  heldDays,
  legalHoldsInForce,
  lockHeldObjects,
  unlockReleasedObjects,
  type LegalHold,
} from '../src/archive/legal-holds';
import { releaseHolds } from '../src/restore/holds';
import { NO_END, type DayRange } from '../src/shared/archive-types';
import type { PlaceHoldResult, ReleaseHoldsResult } from '../src/shared/restore-types';
import { resolveTableRef, type ResolvedTableRef } from '../src/shared/table-ref';
import { HOLD_FORMAT } from '../src/store/documents';
import { recordAudit } from './audit';
import type { ActivityDeps } from './deps';
import { workflowIdOfActivity } from './heartbeat';

export function holdActivities(deps: ActivityDeps) {
  const { config } = deps;
  return {
    /**
     * Writes a legal hold on days of a table to the bucket (who, why, when), so that the
     * archive leaves their rows in the table from its next survey on, and puts an Object
     * Lock legal hold on the objects already archived from those days where the bucket has
     * Object Lock. Idempotent: the id is the placing workflow's, and a retry writes the same
     * hold and locks the same objects.
     */
    async placeHold(input: {
      table: ResolvedTableRef;
      id: string;
      reason: string;
      days: DayRange;
      placedBy: string;
    }): Promise<PlaceHoldResult> {
      const table = resolveTableRef(input.table);
      findTable(config, table);
      const archive = deps.store.table(table);
      const hold = await archive.saveHold({
        format: HOLD_FORMAT,
        id: input.id,
        kind: 'legal',
        reason: input.reason,
        days: [input.days],
        placedBy: input.placedBy,
        workflowId: workflowIdOfActivity(),
        runId: activityInfo().workflowExecution?.runId ?? input.id,
        createdAt: new Date().toISOString(),
      });
      const objectLock = await deps.store.bucket.objectLockEnabled();
      const locked = objectLock
        ? await lockHeldObjects(archive, [{ id: hold.id, reason: hold.reason, days: input.days }])
        : new Map<LegalHold, number>();
      const objectsLocked = [...locked.values()].reduce((a, b) => a + b, 0);
      log.info('legal hold placed', { id: hold.id, table: archive.prefix, objectsLocked });
      await recordAudit(deps, 'hold', `hold:${hold.id}`, table, {
        id: hold.id,
        reason: hold.reason,
        days: input.days,
        placedBy: input.placedBy,
        objectsLocked,
      });
      return { id: hold.id, days: input.days, objectsLocked, objectLock };
    },

    /**
     * Releases holds of a table, or lists them (src/restore/holds.ts); then lifts the Object
     * Lock legal hold of archived objects in released legal days that no other legal hold
     * (the bucket's or the config's) still covers. Idempotent.
     */
    async releaseHolds(input: {
      table: ResolvedTableRef;
      holds?: string[];
      reason: string;
      releasedBy?: string;
      dryRun: boolean;
    }): Promise<ReleaseHoldsResult> {
      const table = resolveTableRef(input.table);
      const configured = findTable(config, table);
      const archive = deps.store.table(table);
      const result = await releaseHolds(
        archive,
        { ...input, workflowId: workflowIdOfActivity() },
        (id) => {
          log.info('hold released', { id, table: archive.prefix });
        },
      );
      if (!result.released || result.holds.length === 0) return result;
      const legalDays = result.holds.filter((h) => h.kind === 'legal').flatMap((h) => h.days);
      let objectsUnlocked: number | undefined;
      if (legalDays.length > 0 && (await deps.store.bucket.objectLockEnabled())) {
        const stillHeld = heldDays(
          legalHoldsInForce(configured.legalHold, await archive.holds(), `${NO_END}T00:00:00Z`),
        );
        objectsUnlocked = await unlockReleasedObjects(archive, legalDays, stillHeld);
      }
      const ids = result.holds.map((h) => h.id);
      await recordAudit(deps, 'release', `release:${ids.join(',')}`, table, {
        ids,
        reason: input.reason,
        ...(input.releasedBy !== undefined && { releasedBy: input.releasedBy }),
        ...(objectsUnlocked !== undefined && { objectsUnlocked }),
      });
      return objectsUnlocked === undefined ? result : { ...result, objectsUnlocked };
    },
  };
}
