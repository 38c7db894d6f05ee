import {
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  continueAsNew,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  CONFLICT_STRATEGIES,
  emptyRestoreTotals,
  type RestoreInput,
  type RestoreProgress,
  type RestoreResult,
  type RestoreTarget,
  type RestoreTotals,
} from '../src/shared/restore-types';
import { ArchiveDatabase, ArchiveTable } from '../src/shared/search-attributes';
import { INVALID_INPUT, resolveTableRef, type ResolvedTableRef } from '../src/shared/table-ref';
import { SHORT_IO, STREAMING } from './activity-options';
import { restoreProgressQuery } from './messages';

const { planRestore, restoreObject } = proxyActivities<Activities>(STREAMING);
const { holdDays } = proxyActivities<Activities>(SHORT_IO);

const HISTORY_EVENTS_PER_RUN = 4_000;
/** Objects restored at the same time, each in its own transaction. */
const OBJECTS_AT_ONCE = 4;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** Carried across continue-as-new; not set by hand. */
interface RestoreState {
  remaining: string[];
  totals: RestoreTotals;
}

/**
 * Restores archived rows from the bucket alone into a table: one transaction per object, each
 * object read back and verified as it streams in, values parsed by PostgreSQL from their text
 * form. Plans first (objects, the restore watermark, how archived columns map onto the target)
 * and refuses before writing anything when columns would be lost. Restoring into the source
 * table holds the restored days, so the archive does not take them again as new copies.
 */
export async function Restore(
  input: RestoreInput & { state?: RestoreState } = {} as RestoreInput,
): Promise<RestoreResult> {
  const source = resolveTableRef(input);
  const target = resolveTarget(source, input.targetTable);
  const conflict = input.conflict ?? 'fail';
  if (!CONFLICT_STRATEGIES.includes(conflict))
    invalid(`"conflict" must be one of ${CONFLICT_STRATEGIES.join(', ')}`);
  for (const [field, value] of [
    ['startDate', input.startDate],
    ['endDate', input.endDate],
  ] as const) {
    if (value !== undefined && !DAY.test(value)) invalid(`"${field}" must be a date as YYYY-MM-DD`);
  }
  upsertSearchAttributes([
    { key: ArchiveDatabase, value: target.database },
    { key: ArchiveTable, value: `${target.schema}.${target.table}` },
  ]);
  const progress: RestoreProgress = {
    state: 'planning',
    plan: null,
    current: null,
    totals: input.state?.totals ?? emptyRestoreTotals(),
  };
  setHandler(restoreProgressQuery, () => progress);

  const plan = await planRestore({
    source,
    target,
    objects: input.state?.remaining ?? input.objects,
    startDate: input.startDate,
    endDate: input.endDate,
    ignoreWatermark: input.ignoreWatermark === true || input.state !== undefined,
    dropMissingColumns: input.dropMissingColumns === true,
  });
  progress.plan = plan;
  if (input.dryRun) {
    progress.state = 'done';
    return { outcome: 'dry-run', plan };
  }

  if (!input.state && sameTable(source, target) && plan.toRestore.length > 0) {
    await holdDays({
      table: source,
      objects: plan.toRestore,
      reason: `restored by ${workflowInfo().workflowId}`,
    });
  }
  progress.state = 'restoring';
  const remaining = [...plan.toRestore];
  const totals = progress.totals;
  const running = new Set<string>();
  // A few objects at a time, each in its own transaction: they are independent.
  const runner = async () => {
    while (remaining.length > 0) {
      if (CancellationScope.current().consideredCancelled) return;
      if (workflowInfo().historyLength > HISTORY_EVENTS_PER_RUN) return;
      const object = remaining.shift()!;
      running.add(object);
      progress.current = object;
      const result = await CancellationScope.nonCancellable(() =>
        restoreObject({
          source,
          target,
          object,
          conflict,
          dropMissingColumns: input.dropMissingColumns === true,
        }),
      );
      running.delete(object);
      totals.objects++;
      totals.rows += result.rows;
      totals.inserted += result.inserted;
      totals.overwritten += result.overwritten;
      totals.skipped += result.skipped;
      totals.identical += result.identical;
    }
  };
  await Promise.all(Array.from({ length: OBJECTS_AT_ONCE }, runner));
  if (CancellationScope.current().consideredCancelled) {
    throw new CancelledFailure(
      `cancelled with ${remaining.length} objects left; every object is in or out whole`,
    );
  }
  if (remaining.length > 0) {
    return await continueAsNew<typeof Restore>({ ...input, state: { remaining, totals } });
  }
  progress.state = 'done';
  progress.current = null;
  return { outcome: 'restored', plan, ...totals };
}

function invalid(message: string): never {
  throw ApplicationFailure.nonRetryable(`workflow input: ${message}`, INVALID_INPUT);
}

function resolveTarget(source: ResolvedTableRef, targetTable: string | undefined): RestoreTarget {
  if (!targetTable)
    return { database: source.database, schema: source.schema, table: source.table };
  const dot = targetTable.indexOf('.');
  return dot < 0
    ? { database: source.database, schema: source.schema, table: targetTable }
    : {
        database: source.database,
        schema: targetTable.slice(0, dot),
        table: targetTable.slice(dot + 1),
      };
}

function sameTable(a: RestoreTarget, b: RestoreTarget): boolean {
  return a.database === b.database && a.schema === b.schema && a.table === b.table;
}
