import type { PlannedObject, RestoreSelection } from '../shared/restore-types';
import { VerificationError } from '../shared/errors';
import type { TableArchive } from '../store/archive-store';
import type { ObjectManifest } from '../store/documents';
import { mapLimit } from '../util/concurrency';

/** Objects listed and read per round: the store's latency, not its bandwidth, bounds planning. */
const LISTED_PER_ROUND = 200;
const READS_IN_FLIGHT = 16;

export interface SelectedObject extends PlannedObject {
  manifest: ObjectManifest;
}

/**
 * The archived objects of a restore's range after `after`, in key order, each with what a
 * restore would write of it: `selected` when this restore writes it. An object is written
 * when the restore watermark does not say it is in the target already (unless
 * `ignoreWatermark`), and, when only deleted rows are restored (the default), when its
 * delete removed rows. Reads a page of manifests and receipts at a time; memory is bounded
 * by the page, whatever the archive's size.
 */
export async function* plannedObjects(
  archive: TableArchive,
  selection: RestoreSelection,
  after?: string,
): AsyncGenerator<SelectedObject> {
  const wanted = selection.objects && new Set(selection.objects);
  const span = { startDate: selection.startDate, endDate: selection.endDate };
  let cursor = after;
  for (;;) {
    const { objects, more, orphans } = await archive.listObjects(span, {
      ...(cursor !== undefined && { after: cursor }),
      limit: LISTED_PER_ROUND,
    });
    // Its documents say it was archived (and maybe deleted): a restore without it is not whole.
    const lost = orphans.find((o) => !wanted || wanted.has(o));
    if (lost !== undefined) {
      throw new VerificationError(
        `${archive.where(lost)}: the data object is missing though its documents are there; it cannot be restored`,
        { object: lost },
      );
    }
    // An object no document refers to (no manifest, nothing deleted from it) is what an
    // interrupted export may have left: its rows were never deleted, so a restore has nothing
    // to take from it and goes on without it (validate reports it). Asked for by key, it is
    // refused below like any object without its manifest.
    const listed = objects.filter((o) =>
      wanted
        ? wanted.has(o.object)
        : o.hasManifest || o.hasDeletionManifest || o.hasDeletionReceipt,
    );
    const planned = await mapLimit(listed, READS_IN_FLIGHT, async (o) => {
      const [manifest, receipt, restored] = await Promise.all([
        archive.manifest(o.object),
        o.hasDeletionReceipt ? archive.receipt(o.object) : undefined,
        archive.restoreReceipt(selection.target, o.object),
      ]);
      if (!manifest) {
        throw new VerificationError(
          `${archive.where(o.object)}: its manifest is missing; the object cannot be restored`,
          { object: o.object },
        );
      }
      const deleted = receipt?.deleted ?? null;
      // A delete intent without a receipt: whether its transaction committed is for the
      // restore of the object to ask PostgreSQL (src/restore/restore-object.ts).
      const maybeDeleted = !receipt && o.hasDeleteIntent;
      const selected =
        (selection.ignoreWatermark || !restored) &&
        (selection.lines === 'all' ? manifest.rowCount > 0 : (deleted ?? 0) > 0 || maybeDeleted);
      return {
        object: o.object,
        day: o.day,
        rows: manifest.rowCount,
        deleted,
        bytes: manifest.bytes,
        restored: restored !== undefined,
        selected,
        manifest,
      };
    });
    yield* planned;
    if (!more) return;
    cursor = objects.at(-1)!.object;
  }
}
