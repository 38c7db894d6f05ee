import type { BatchWatermark } from '../shared/archive-types';
import type { ResolvedTableRef } from '../shared/table-ref';
import type { TableArchive } from '../store/archive-store';
import { WATERMARK_FORMAT } from '../store/documents';

/**
 * Moves the table's watermark to a batch's newest timestamp, never backwards. Only the run
 * holding the table's lock writes it, so a plain write cannot lose a newer value.
 */
export async function advanceWatermark(
  archive: TableArchive,
  table: ResolvedTableRef,
  input: BatchWatermark,
): Promise<{ moved: boolean }> {
  const current = await archive.watermark();
  if (current && BigInt(current.archivedThroughMicros) >= BigInt(input.maxTimestampMicros)) {
    return { moved: false };
  }
  await archive.saveWatermark({
    format: WATERMARK_FORMAT,
    ...table,
    archivedThrough: input.maxTimestamp,
    archivedThroughMicros: input.maxTimestampMicros,
    lastRun: input.run,
    lastCutoff: input.cutoff,
    updatedAt: new Date().toISOString(),
  });
  return { moved: true };
}
