import type { AdvanceWatermarkInput } from '../shared/archive-types';
import type { TableArchive } from '../store/archive-store';
import { WATERMARK_FORMAT } from '../store/documents';

/**
 * Moves the table's watermark to a batch's newest timestamp, never backwards. Only the run
 * holding the table's lock writes it, so a plain write cannot lose a newer value.
 */
export async function advanceWatermark(
  archive: TableArchive,
  input: AdvanceWatermarkInput,
): Promise<{ moved: boolean }> {
  const current = await archive.watermark();
  if (current && BigInt(current.archivedThroughMicros) >= BigInt(input.maxTimestampMicros)) {
    return { moved: false };
  }
  await archive.saveWatermark({
    format: WATERMARK_FORMAT,
    ...input.table,
    archivedThrough: input.maxTimestamp,
    archivedThroughMicros: input.maxTimestampMicros,
    lastRun: input.run,
    lastCutoff: input.cutoff,
    updatedAt: new Date().toISOString(),
  });
  return { moved: true };
}
