import type { ArchiveTableOutcome } from '../src/shared/archive-types';
import { failureType } from '../src/shared/metrics-sink';
import type { ResolvedTableRef } from '../src/shared/table-ref';
import { notifyRunEnd } from './notify';
import { countRunEnd } from './metrics';
import { archiveOutcome, outcomeOfError, recordOutcome } from './run-metadata';

/**
 * What an archive run does as it ends (the last run of a continue-as-new chain): the one
 * place that tells the world, so that every way a run ends is reported the same way.
 */
export async function runSucceeded(
  _ref: ResolvedTableRef,
  _outcome: ArchiveTableOutcome,
): Promise<void> {
  recordOutcome(archiveOutcome(_outcome));
  countRunEnd({ ..._ref, outcome: archiveOutcome(_outcome) });
  await notifyRunEnd(_ref, { outcome: _outcome });
  // Reports are added here (notifications, the outcome search attribute).
}

/** A run that failed, or was cancelled (`err` tells which); `err` is rethrown by the caller. */
export async function runFailed(_ref: ResolvedTableRef, _err: unknown): Promise<void> {
  recordOutcome(outcomeOfError(_err));
  const outcome = outcomeOfError(_err);
  countRunEnd({
    ..._ref,
    outcome,
    ...(outcome === 'failed' && { errorType: failureType(_err) }),
  });
  await notifyRunEnd(_ref, { error: _err });
  // Reports are added here (notifications, the outcome search attribute).
}
