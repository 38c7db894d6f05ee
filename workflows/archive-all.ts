import {
  ChildWorkflowFailure,
  ParentClosePolicy,
  condition,
  continueAsNew,
  proxyActivities,
  setHandler,
  startChild,
  workflowInfo,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { Activities } from '../activities';
import { archiveTableWorkflowId } from '../src/shared/archive-types';
import type {
  ArchiveAllInput,
  ArchiveAllState,
  ArchiveRunResult,
  TableResult,
} from '../src/shared/run-types';
import { retentionRows, runMemo, staticDetails } from '../src/shared/run-metadata';
import { tableSearchAttributes, type RunOutcome } from '../src/shared/search-attributes';
import type { ResolvedTableRef } from '../src/shared/table-ref';
import { SHORT_IO } from './activity-options';
import { ArchiveTable } from './archive-table';
import { runProgressQuery } from './messages';
import { currentMemo, recordConfigDigest, withOutcome } from './run-metadata';

const { planRun } = proxyActivities<Activities>(SHORT_IO);

/** Continue as new, once the running children are done, before the history grows large. */
const HISTORY_EVENTS_PER_RUN = 6_000;

/**
 * Archives every configured table (or the chosen subset) as child ArchiveTable workflows,
 * with bounded parallelism overall, per database and across databases. One table failing
 * does not stop the others; the result lists every table with its outcome.
 */
export async function ArchiveAll(input: ArchiveAllInput = {}): Promise<ArchiveRunResult> {
  return withOutcome(() => archiveAll(input), runOutcome);
}

async function archiveAll(input: ArchiveAllInput): Promise<ArchiveRunResult> {
  const state: ArchiveAllState =
    input.state ??
    (await planRun({ database: input.database, table: input.table }).then((plan) => {
      recordConfigDigest(plan.configDigest);
      return { pending: plan.tables, results: [], limits: plan.limits };
    }));
  const running = new Map<string, { ref: ResolvedTableRef; settled: boolean }>();
  setHandler(runProgressQuery, () => ({
    finished: state.results,
    running: [...running.entries()].map(([workflowId, r]) => ({ workflowId, table: r.ref })),
    pending: state.pending.length,
  }));

  const { limits } = state;
  const runningIn = (database: string) =>
    [...running.values()].filter((r) => r.ref.database === database).length;
  const activeDatabases = () => new Set([...running.values()].map((r) => r.ref.database));
  const canStart = (ref: ResolvedTableRef) =>
    running.size < limits.maxParallelTables &&
    runningIn(ref.database) < limits.maxParallelTablesPerDatabase &&
    (activeDatabases().has(ref.database) || activeDatabases().size < limits.maxParallelDatabases);

  let tooLong = false;
  while (state.pending.length > 0 || running.size > 0) {
    tooLong ||= workflowInfo().historyLength > HISTORY_EVENTS_PER_RUN;
    if (tooLong && running.size === 0) {
      return await continueAsNew<typeof ArchiveAll>({ ...input, state });
    }
    const next = tooLong ? -1 : state.pending.findIndex(canStart);
    if (next >= 0) {
      const [ref] = state.pending.splice(next, 1) as [ResolvedTableRef];
      await startTable(ref, input.dryRun === true, state.results, running);
      continue;
    }
    await condition(() => [...running.values()].some((r) => r.settled));
    for (const [id, r] of running) if (r.settled) running.delete(id);
  }
  return {
    tables: state.results,
    failed: state.results.filter((r) => r.outcome === 'failed').length,
  };
}

async function startTable(
  ref: ResolvedTableRef,
  dryRun: boolean,
  results: TableResult[],
  running: Map<string, { ref: ResolvedTableRef; settled: boolean }>,
): Promise<void> {
  const workflowId = archiveTableWorkflowId(ref, dryRun);
  const started = Date.now();
  const finish = (
    result: Omit<TableResult, keyof ResolvedTableRef | 'workflowId' | 'durationMs'>,
  ) => results.push({ ...ref, workflowId, durationMs: Date.now() - started, ...result });
  let handle: ChildWorkflowHandle<typeof ArchiveTable>;
  try {
    handle = await startChild(ArchiveTable, {
      workflowId,
      args: [{ ...ref, dryRun }],
      // Cancelling the run asks each table to stop after its current batch.
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      typedSearchAttributes: tableSearchAttributes(ref),
      staticSummary: `${dryRun ? 'Dry run of' : 'Archive'} ${ref.database} ${ref.schema}.${ref.table}`,
      ...childMetadata(ref),
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      finish({ outcome: 'already running', reason: `workflow ${workflowId} is already running` });
      return;
    }
    throw err;
  }
  const entry = { ref, settled: false };
  running.set(workflowId, entry);
  handle.result().then(
    (outcome) => {
      if (outcome.outcome === 'archived') {
        const { batches, rowsArchived, rowsDeleted, rowsChanged, bytes, objects, skipped } =
          outcome;
        finish({
          outcome: 'archived',
          skipped,
          batches,
          rowsArchived,
          rowsDeleted,
          rowsChanged,
          bytes,
          objects,
        });
      } else if (outcome.outcome === 'locked') {
        finish({ outcome: 'locked', reason: `table is locked by ${outcome.heldBy}` });
      } else {
        finish({ outcome: 'dry-run', estimate: outcome.estimate });
      }
      entry.settled = true;
    },
    (err: unknown) => {
      finish({ outcome: 'failed', reason: failureReason(err) });
      entry.settled = true;
    },
  );
}

/**
 * A child's memo and static details: the run's config digest, who started the run, and
 * which run it is part of (its cutoff is fixed by the child as it starts).
 */
function childMetadata(ref: ResolvedTableRef): {
  memo: Record<string, string>;
  staticDetails: string;
} {
  const parent = workflowInfo().workflowId;
  const memo = { ...currentMemo(), workerConfigDigest: undefined };
  return {
    memo: runMemo(memo),
    staticDetails: staticDetails({
      scope: `${ref.database} ${ref.schema}.${ref.table}`,
      rows: retentionRows(undefined),
      command: `ArchiveAll ${parent}`,
      memo,
    }),
  };
}

/**
 * A whole run's ArchiveOutcome: failed when any table failed; otherwise archived when any
 * table moved rows, dry-run for a dry run, locked when every table was held by another run,
 * else nothing-to-archive.
 */
function runOutcome(result: ArchiveRunResult): RunOutcome {
  const { tables } = result;
  if (result.failed > 0) return 'failed';
  if (tables.some((t) => t.outcome === 'dry-run')) return 'dry-run';
  if (tables.some((t) => t.outcome === 'archived' && (t.rowsArchived ?? 0) > 0)) return 'archived';
  if (
    tables.length > 0 &&
    tables.every((t) => t.outcome === 'locked' || t.outcome === 'already running')
  )
    return 'locked';
  return 'nothing-to-archive';
}

/** The innermost message of a child's failure: what actually went wrong. */
function failureReason(err: unknown): string {
  let cause: unknown = err;
  while (cause instanceof Error && cause.cause instanceof Error) cause = cause.cause;
  if (err instanceof ChildWorkflowFailure && cause instanceof Error) return cause.message;
  return cause instanceof Error ? cause.message : String(cause);
}
