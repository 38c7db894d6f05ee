import {
  ContinueAsNew,
  isCancellation,
  patched,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { RunMemo } from '../src/shared/run-metadata';
import { outcomeSearchAttribute, type RunOutcome } from '../src/shared/search-attributes';

/**
 * Mark the histories in which a run sets ArchiveOutcome as it ends, and its memo's config
 * digest as it plans: runs recorded before these commands existed replay without them.
 */
const OUTCOME_PATCH = 'run-outcome-search-attribute';
const MEMO_PATCH = 'config-digest-memo';

/** Sets the ArchiveOutcome search attribute, as a run ends (see RUN_OUTCOMES). */
export function recordOutcome(outcome: RunOutcome): void {
  if (patched(OUTCOME_PATCH)) upsertSearchAttributes(outcomeSearchAttribute(outcome));
}

/** The outcome of a run that ends by throwing `err`: cancelled or failed. */
export function outcomeOfError(err: unknown): RunOutcome {
  return isCancellation(err) ? 'cancelled' : 'failed';
}

/**
 * Runs a workflow's body and records its outcome as it ends: `outcomeOf` its result, or
 * failed / cancelled when it throws. Continue-as-new ends this run only: the chain goes on
 * and its last run records the outcome.
 */
export async function withOutcome<T>(
  body: () => Promise<T>,
  outcomeOf: (result: T) => RunOutcome,
): Promise<T> {
  let result: T;
  try {
    result = await body();
  } catch (err) {
    if (!(err instanceof ContinueAsNew)) recordOutcome(outcomeOfError(err));
    throw err;
  }
  recordOutcome(outcomeOf(result));
  return result;
}

/** The run's memo as it was started (the CLI's, a parent's, or a schedule's, if any). */
export function currentMemo(): RunMemo {
  const memo = workflowInfo().memo ?? {};
  const text = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return {
    configDigest: text(memo.configDigest),
    startedBy: text(memo.startedBy),
    workerConfigDigest: text(memo.workerConfigDigest),
  };
}

/**
 * Completes the memo with the worker's config digest, from a plan the worker made: a run
 * started without the CLI (a schedule, `temporal workflow start`, the Web UI) gets
 * configDigest and startedBy; a run whose starter had another config than the worker gets
 * workerConfigDigest beside it. No command when the memo already says it all. `digest` is
 * undefined in histories recorded before plans carried it.
 */
export function recordConfigDigest(digest: string | undefined): void {
  if (digest === undefined) return;
  const memo = currentMemo();
  if (memo.configDigest === digest || memo.workerConfigDigest === digest) return;
  if (!patched(MEMO_PATCH)) return;
  upsertMemo(
    memo.configDigest === undefined
      ? { configDigest: digest, startedBy: memo.startedBy ?? startedWithoutCli() }
      : { workerConfigDigest: digest },
  );
}

/** Who started a run that came without a memo: its parent, its schedule, or someone else. */
function startedWithoutCli(): string {
  const info = workflowInfo();
  if (info.parent) return `parent workflow ${info.parent.workflowId}`;
  const scheduledBy = info.searchAttributes?.TemporalScheduledById;
  if (Array.isArray(scheduledBy) && typeof scheduledBy[0] === 'string') {
    return `schedule ${scheduledBy[0]}`;
  }
  return 'a Temporal client other than the CLI (temporal workflow start, the Web UI, an SDK)';
}
