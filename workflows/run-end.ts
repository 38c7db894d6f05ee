import { setCurrentDetails } from '@temporalio/workflow';
import type { ArchiveTableOutcome } from '../src/shared/archive-types';
import { innermostMessage } from '../src/shared/failures';
import { failureType } from '../src/shared/metrics-sink';
import type { ResolvedTableRef } from '../src/shared/table-ref';
import { notifyRunEnd } from './notify';
import { countRunEnd } from './metrics';
import { archiveEndDetails, archiveTableOutcome } from '../src/shared/run-metadata';
import { outcomeOfError, recordOutcome } from './run-metadata';

/**
 * What an archive run does as it ends (the last run of a continue-as-new chain): the one
 * place that tells the world, so that every way a run ends is reported the same way: the
 * ArchiveOutcome search attribute and the current details (the Web UI), the runs counter
 * (/metrics), and the notifications its database's channels ask for.
 */
export async function runSucceeded(
  ref: ResolvedTableRef,
  outcome: ArchiveTableOutcome,
): Promise<void> {
  const ended = archiveTableOutcome(outcome);
  setCurrentDetails(archiveEndDetails(outcome));
  recordOutcome(ended);
  countRunEnd({ ...ref, outcome: ended });
  await notifyRunEnd(ref, { outcome });
}

/** A run that failed, or was cancelled (`err` tells which); `err` is rethrown by the caller. */
export async function runFailed(ref: ResolvedTableRef, err: unknown): Promise<void> {
  const ended = outcomeOfError(err);
  setCurrentDetails(`Outcome: ${ended}. ${innermostMessage(err)}`);
  recordOutcome(ended);
  countRunEnd({
    ...ref,
    outcome: ended,
    ...(ended === 'failed' && { errorType: failureType(err) }),
  });
  await notifyRunEnd(ref, { error: err });
}
