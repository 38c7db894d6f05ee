import {
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  continueAsNew,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  CONFLICT_STRATEGIES,
  emptyRestoreTotals,
  RESTORE_LINES,
  type RestoreInput,
  type RestorePlan,
  type RestoreProgress,
  type RestoreResult,
  type RestoreSelection,
  type RestoreTarget,
  type RestoreTotals,
} from '../src/shared/restore-types';
import { tableSearchAttributes } from '../src/shared/search-attributes';
import {
  INVALID_INPUT,
  parseTableName,
  resolveTableRef,
  type ResolvedTableRef,
} from '../src/shared/table-ref';
import { SHORT_IO, STREAMING } from './activity-options';
import { restoreProgressQuery } from './messages';
import { HistoryFull, Patience } from './patience';
import { withOutcome } from './run-metadata';
import { TableLock } from './table-lock';

const { planRestore, restorePage, restoreObject } = proxyActivities<Activities>(STREAMING);
const { holdDays } = proxyActivities<Activities>(SHORT_IO);

const HISTORY_EVENTS_PER_RUN = 4_000;
const HISTORY_EVENTS_WHILE_WAITING = 8_000;
/** Objects restored at the same time, each in its own transaction. */
const OBJECTS_AT_ONCE = 4;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** Carried across continue-as-new; not set by hand. */
interface RestoreState {
  /** The plan, without its listing page. */
  plan: RestorePlan;
  /** The last object of the pages restored so far. */
  after?: string;
  held: boolean;
  totals: RestoreTotals;
}

/**
 * Restores archived rows from the bucket alone into a table: one transaction per object, each
 * object read back and verified as it streams in, values parsed by PostgreSQL from their text
 * form. By default it writes exactly the row versions the archive's deletes removed. Plans
 * first (how many objects and rows, how archived columns map onto the target) and refuses
 * before writing anything when columns would be lost. Restoring into the source table takes
 * the table's lock (no archive run deletes meanwhile) and holds the restored days, so the
 * archive does not take those rows again as new copies. Works page by page: its history and
 * payloads stay small whatever the size of the archive.
 */
export async function Restore(
  input: RestoreInput & { state?: RestoreState } = {} as RestoreInput,
): Promise<RestoreResult> {
  return withOutcome(
    () => restore(input),
    (result) => result.outcome,
  );
}

async function restore(input: RestoreInput & { state?: RestoreState }): Promise<RestoreResult> {
  const source = resolveTableRef(input);
  const target = resolveTarget(source, input.targetTable);
  const conflict = input.conflict ?? 'fail';
  const lines = input.lines ?? 'deleted';
  if (!CONFLICT_STRATEGIES.includes(conflict))
    invalid(`"conflict" must be one of ${CONFLICT_STRATEGIES.join(', ')}`);
  if (!RESTORE_LINES.includes(lines)) invalid(`"lines" must be one of ${RESTORE_LINES.join(', ')}`);
  for (const [field, value] of [
    ['startDate', input.startDate],
    ['endDate', input.endDate],
  ] as const) {
    if (value !== undefined && !DAY.test(value)) invalid(`"${field}" must be a date as YYYY-MM-DD`);
  }
  upsertSearchAttributes(tableSearchAttributes(target));
  const progress: RestoreProgress = {
    state: 'planning',
    plan: input.state?.plan ?? null,
    current: [],
    totals: input.state?.totals ?? emptyRestoreTotals(),
  };
  setHandler(restoreProgressQuery, () => progress);
  const patience = new Patience((waiting) => {
    if (waiting) progress.waiting = waiting;
    else delete progress.waiting;
    setCurrentDetails(waiting ? `Waiting out a fault (${waiting.step}): ${waiting.lastError}` : '');
  }, HISTORY_EVENTS_WHILE_WAITING);

  const selection: RestoreSelection = {
    source,
    target,
    ...(input.objects && { objects: input.objects }),
    ...(input.startDate && { startDate: input.startDate }),
    ...(input.endDate && { endDate: input.endDate }),
    ignoreWatermark: input.ignoreWatermark === true,
    lines,
  };
  const plan =
    input.state?.plan ??
    (await patience.run('plan the restore', () =>
      planRestore({
        ...selection,
        dropMissingColumns: input.dropMissingColumns === true,
        ...(input.listAfter && { listAfter: input.listAfter }),
      }),
    ));
  progress.plan = plan;
  if (input.dryRun) {
    progress.state = 'done';
    return { outcome: 'dry-run', plan };
  }
  const state: RestoreState = input.state ?? {
    plan: { ...plan, page: [] },
    held: false,
    totals: progress.totals,
  };
  if (plan.toRestore === 0) {
    progress.state = 'done';
    return { outcome: 'restored', plan: state.plan, ...state.totals };
  }

  const lock = sameTable(source, target)
    ? new TableLock(source, workflowInfo().firstExecutionRunId, patience)
    : undefined;
  if (lock) {
    progress.state = 'waiting for lock';
    const taken = await lock.acquire();
    if (!taken.held) {
      progress.state = 'done';
      return { outcome: 'locked', heldBy: taken.heldBy };
    }
  }
  try {
    if (lock && !state.held) {
      await patience.run('hold the restored days', () =>
        holdDays({
          table: source,
          id: workflowInfo().firstExecutionRunId,
          days: plan.days,
          reason: `restored by ${workflowInfo().workflowId}`,
        }),
      );
      state.held = true;
    }
    progress.state = 'restoring';
    await restorePages(selection, input, state, progress, patience);
  } catch (err) {
    if (err instanceof HistoryFull) {
      await lock?.release();
      return await continueAsNew<typeof Restore>({ ...input, state });
    }
    throw err;
  } finally {
    await CancellationScope.nonCancellable(async () => lock?.release());
  }
  progress.state = 'done';
  progress.current = [];
  return { outcome: 'restored', plan: state.plan, ...state.totals };
}

/** Restores page after page, a few objects at a time, each in its own transaction. */
async function restorePages(
  selection: RestoreSelection,
  input: RestoreInput,
  state: RestoreState,
  progress: RestoreProgress,
  patience: Patience,
): Promise<void> {
  for (;;) {
    if (workflowInfo().historyLength > HISTORY_EVENTS_PER_RUN) throw new HistoryFull('the restore');
    const after = state.after;
    const page = await patience.run('list the next objects', () =>
      restorePage({ ...selection, ...(after !== undefined && { after }) }),
    );
    const remaining = [...page.objects];
    const runner = async () => {
      for (let object = remaining.shift(); object; object = remaining.shift()) {
        if (CancellationScope.current().consideredCancelled) return;
        const key = object;
        progress.current.push(key);
        const result = await CancellationScope.nonCancellable(() =>
          patience.run(`restore ${key}`, () =>
            restoreObject({
              source: selection.source,
              target: selection.target,
              object: key,
              conflict: input.conflict ?? 'fail',
              dropMissingColumns: input.dropMissingColumns === true,
              lines: selection.lines,
            }),
          ),
        );
        progress.current = progress.current.filter((o) => o !== key);
        const t = state.totals;
        t.objects++;
        t.rows += result.rows;
        t.inserted += result.inserted;
        t.overwritten += result.overwritten;
        t.skipped += result.skipped;
        t.identical += result.identical;
        if (!progress.waiting) {
          setCurrentDetails(`Restoring: ${t.objects} objects, ${t.rows} rows so far`);
        }
      }
    };
    await Promise.all(Array.from({ length: OBJECTS_AT_ONCE }, runner));
    if (CancellationScope.current().consideredCancelled) {
      throw new CancelledFailure(
        `cancelled after ${state.totals.objects} objects; every object is in or out whole`,
      );
    }
    if (page.objects.length > 0) state.after = page.objects.at(-1);
    if (!page.more) return;
  }
}

function invalid(message: string): never {
  throw ApplicationFailure.nonRetryable(`workflow input: ${message}`, INVALID_INPUT);
}

function resolveTarget(source: ResolvedTableRef, targetTable: string | undefined): RestoreTarget {
  if (!targetTable)
    return { database: source.database, schema: source.schema, table: source.table };
  const name = parseTableName(targetTable);
  if (!name)
    invalid(
      `"targetTable" ${JSON.stringify(targetTable)} is not a table name: write table or schema.table, with double quotes around a name that holds a dot ("a.b".c)`,
    );
  return { database: source.database, schema: name.schema ?? source.schema, table: name.table };
}

function sameTable(a: RestoreTarget, b: RestoreTarget): boolean {
  return a.database === b.database && a.schema === b.schema && a.table === b.table;
}
