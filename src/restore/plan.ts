import type { PlannedObject, PlanRestoreInput, RestorePlan } from '../shared/restore-types';
import { RESTORE_PAGE_SIZE } from '../shared/restore-types';
import { RestoreRefusedError } from '../shared/errors';
import type { TableArchive } from '../store/archive-store';
import { rangesOfDays } from '../archive/days';
import { describeColumnPlan, planColumns } from './column-plan';
import type { RestoreTargetShape } from './restore-object';
import { plannedObjects } from './select';

export interface PlanIo {
  /** The target table as it is now, looked up by the archive's key column. */
  targetShape: (keyColumn: string) => Promise<RestoreTargetShape>;
  /** The key column when the range holds no object to read it from. */
  defaultKeyColumn: () => string;
  progress: (details: Record<string, unknown>) => void;
}

/**
 * What a restore would write and how: how many objects and rows, which days, the objects it
 * skips (already restored there by the restore watermark; never deleted), how each archived
 * schema maps onto the target, and one page of the objects for listings. A later page of a
 * listing (`listAfter`) reads only that page. Refuses when archived columns would be lost.
 * Reads only.
 */
export async function planRestore(
  archive: TableArchive,
  input: PlanRestoreInput,
  io: PlanIo,
): Promise<RestorePlan> {
  // A later page of a listing reads only that page, not the whole range again.
  const listing = input.listAfter !== undefined;
  let objects = 0;
  let toRestore = 0;
  let rows = 0;
  let notDeleted = 0;
  let alreadyRestored = 0;
  const days = new Set<string>();
  const schemaKeys = new Set<string>();
  const page: PlannedObject[] = [];
  let more = false;
  const seen = new Set<string>();
  for await (const o of plannedObjects(archive, input, input.listAfter)) {
    if (page.length === RESTORE_PAGE_SIZE) {
      more = true;
      if (listing) break;
    } else {
      page.push(plannedOf(o));
    }
    seen.add(o.object);
    objects++;
    if (o.restored && !input.ignoreWatermark) alreadyRestored++;
    else if (!o.selected) notDeleted++;
    if (o.selected) {
      toRestore++;
      rows += input.lines === 'all' ? o.rows : (o.deleted ?? 0);
      days.add(o.day);
      schemaKeys.add(o.manifest.schemaKey);
    }
    if (objects % 100 === 0) io.progress({ planned: objects });
  }
  const summary = {
    source: input.source,
    target: input.target,
    lines: input.lines,
    objects,
    toRestore,
    rows,
    days: rangesOfDays(days),
    page,
    more,
  };
  if (listing) return { ...summary, columnPlans: [], decision: [] };
  const unknown = (input.objects ?? []).filter((k) => !seen.has(k));
  if (unknown.length > 0) {
    throw new RestoreRefusedError(
      `not an archived object of ${input.source.database} ${input.source.schema}.${input.source.table}: ${unknown.join(', ')}`,
    );
  }
  const snapshots = await Promise.all([...schemaKeys].map((k) => archive.requireSchemaSnapshot(k)));
  const keyColumn = snapshots[0]?.archiveKey ?? io.defaultKeyColumn();
  const target = await io.targetShape(keyColumn);
  const columnPlans = snapshots.map((s) => planColumns(s, target.columns));
  const into = `${input.target.database} ${input.target.schema}.${input.target.table}`;
  const skippedNote = [
    alreadyRestored > 0 &&
      `${alreadyRestored} already restored there (--ignore-watermark restores them again)`,
    notDeleted > 0 &&
      input.lines === 'deleted' &&
      `${notDeleted} whose rows were never deleted or are all still in the table (--all-lines restores every archived line)`,
  ].filter(Boolean);
  const decision = [
    `restore into ${into}: ${toRestore} of ${objects} objects, ${rows} rows${input.lines === 'all' ? ' (every archived line)' : ' (the rows the archive deleted)'}${skippedNote.length > 0 ? `; skipped: ${skippedNote.join('; ')}` : ''}`,
    ...columnPlans.flatMap((p) => describeColumnPlan(p, input.dropMissingColumns)),
  ];
  const refused = columnPlans.filter((p) => p.missing.length > 0);
  if (refused.length > 0 && !input.dropMissingColumns) {
    throw new RestoreRefusedError(
      `${into} lacks archived columns ${[...new Set(refused.flatMap((p) => p.missing))].join(', ')}; nothing was written (add the columns, or restore with --drop-missing-columns to leave them out)`,
    );
  }
  return { ...summary, columnPlans, decision };
}

/** What a listing shows of a selected object (its manifest stays here). */
function plannedOf(o: PlannedObject & { manifest: unknown }): PlannedObject {
  const { object, day, rows, deleted, bytes, restored, selected } = o;
  return { object, day, rows, deleted, bytes, restored, selected };
}
