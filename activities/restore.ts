import { activityInfo, cancellationSignal, log } from '@temporalio/activity';
import { findTable } from '../src/config';
import { stopwatch } from '../src/metrics';
import { restoreObject, type RestoreTargetShape } from '../src/restore/restore-object';
import { planRestore } from '../src/restore/plan';
import { plannedObjects } from '../src/restore/select';
import { inspectTarget } from '../src/restore/target';
import { TableNotFoundError } from '../src/shared/errors';
import {
  RESTORE_PAGE_SIZE,
  type HoldDaysInput,
  type PlanRestoreInput,
  type RestoreObjectInput,
  type RestoreObjectResult,
  type RestorePage,
  type RestorePageInput,
  type RestorePlan,
  type RestoreTarget,
} from '../src/shared/restore-types';
import { tablePath } from '../src/shared/names';
import { HOLD_FORMAT, RESTORE_RECEIPT_FORMAT } from '../src/store/documents';
import { recordAudit } from './audit';
import { withClient } from './context';
import type { ActivityDeps } from './deps';
import { heartbeating, workflowIdOfActivity } from './heartbeat';

export function restoreActivities(deps: ActivityDeps) {
  const { config } = deps;

  /** The target table as it is now; its database must be configured. */
  function targetShape(target: RestoreTarget, keyColumn: string): Promise<RestoreTargetShape> {
    const db = config.databases.find((d) => d.name === target.database);
    if (!db) throw new TableNotFoundError(`database "${target.database}" is not in the config`);
    return withClient(deps, target.database, (client) =>
      inspectTarget(client, db, target, keyColumn),
    );
  }

  return {
    /**
     * Says what a restore would write and how: how many objects and rows, which days, the
     * objects it skips (already restored there by the restore watermark; never deleted), how
     * each archived schema maps onto the target, and one page of the objects for listings.
     * Refuses when archived columns would be lost. Reads only.
     */
    planRestore(input: PlanRestoreInput): Promise<RestorePlan> {
      return heartbeating(async (details) => {
        const archive = deps.store.table(input.source);
        return planRestore(archive, input, {
          targetShape: (keyColumn) => targetShape(input.target, keyColumn),
          defaultKeyColumn: () => findTable(config, input.source).primaryKey,
          progress: details,
        });
      });
    },

    /** The next objects a restore writes, after `after`: one page, so payloads stay small. */
    restorePage(input: RestorePageInput): Promise<RestorePage> {
      return heartbeating(async () => {
        const objects: string[] = [];
        const archive = deps.store.table(input.source);
        for await (const o of plannedObjects(archive, input, input.after)) {
          if (!o.selected) continue;
          objects.push(o.object);
          // Full: stop here rather than read on only to learn whether more follow (the next
          // page, maybe empty, says).
          if (objects.length === RESTORE_PAGE_SIZE) return { objects, more: true };
        }
        return { objects, more: false };
      });
    },

    /**
     * Restores one archived object into the target in one transaction (src/restore/
     * restore-object.ts) and records it in the restore watermark. Idempotent.
     */
    restoreObject(input: RestoreObjectInput): Promise<RestoreObjectResult> {
      return heartbeating(async (details) => {
        const elapsed = stopwatch();
        const archive = deps.store.table(input.source);
        const manifest = await archive.requireManifest(input.object);
        const target = await targetShape(input.target, manifest.primaryKey.column);
        const result = await withClient(deps, input.target.database, (client) =>
          restoreObject(
            {
              client,
              archive,
              signal: cancellationSignal(),
              onRows: (rows) => details({ object: input.object, rows }),
            },
            { ...input, target },
          ),
        );
        await archive.saveRestoreReceipt({
          format: RESTORE_RECEIPT_FORMAT,
          ...result,
          target: input.target,
          conflict: input.conflict,
          lines: input.lines,
          workflowId: workflowIdOfActivity(),
          restoredAt: new Date().toISOString(),
        });
        log.info('object restored', { ...result });
        await recordAudit(
          deps,
          'restore',
          `restore:${input.object}:${tablePath(input.target)}`,
          input.source,
          { ...result, target: input.target, conflict: input.conflict, lines: input.lines },
        );
        deps.metrics?.restored(input.source, result.inserted + result.overwritten, elapsed());
        return result;
      });
    },

    /**
     * Holds days of a table: the archive leaves rows of held days where they are, so rows a
     * restore brings back are not archived a second time as new copies. Each restore writes a
     * hold of its own (holds accumulate; none replaces another); they are released with the
     * ReleaseHolds workflow (`audit-archiver restore --release-holds`). Idempotent per run.
     */
    async holdDays(input: HoldDaysInput): Promise<string> {
      const hold = await deps.store.table(input.table).saveHold({
        format: HOLD_FORMAT,
        id: input.id,
        reason: input.reason,
        days: input.days,
        workflowId: workflowIdOfActivity(),
        runId: activityInfo().workflowExecution?.runId ?? input.id,
        createdAt: new Date().toISOString(),
      });
      return hold.id;
    },
  };
}
