import type { PoolClient } from 'pg';
import type { ConfiguredLegalHold } from '../config/tables';
import type { DayRange, HeldRows } from '../shared/archive-types';
import type { TableArchive } from '../store/archive-store';
import type { Hold } from '../store/documents';
import { mergeDays } from './days';
import { nextDate } from './export';
import type { TableSql } from './table-sql';

/** A legal hold in force: the config's, or one `audit-archiver hold place` wrote to the bucket. */
export interface LegalHold {
  /** `config`, or the bucket hold's id. */
  id: string;
  reason: string;
  days: DayRange;
}

/** The id a config's legal hold goes by in results, logs and the audit trail. */
export const CONFIG_HOLD_ID = 'config';

/**
 * The legal holds in force on a table: its config's and the bucket's holds of kind legal.
 * Days run up to the cutoff's day at most: rows of later days are not old enough anyway,
 * and an open-ended hold (no `until`) reaches that far.
 */
export function legalHoldsInForce(
  configured: ConfiguredLegalHold | null,
  holds: readonly Hold[],
  cutoff: string,
): LegalHold[] {
  const lastDay = cutoff.slice(0, 10);
  const upTo = (last: string | undefined) =>
    last === undefined || last > lastDay ? lastDay : last;
  const fromConfig: LegalHold[] = configured
    ? [
        {
          id: CONFIG_HOLD_ID,
          reason: configured.reference
            ? `${configured.reason} (${configured.reference})`
            : configured.reason,
          days: { first: configured.since, last: upTo(configured.until) },
        },
      ]
    : [];
  const fromBucket = holds
    .filter((h) => h.kind === 'legal')
    .flatMap((h) =>
      h.days.map((d) => ({
        id: h.id,
        reason: h.reason,
        days: { first: d.first, last: upTo(d.last) },
      })),
    );
  return [...fromConfig, ...fromBucket].filter((h) => h.days.first <= h.days.last);
}

/** The legal hold in force on a UTC day of the table now, if any (the first one found). */
export async function legalHoldOn(
  archive: TableArchive,
  configured: ConfiguredLegalHold | null,
  day: string,
): Promise<LegalHold | undefined> {
  const holds = legalHoldsInForce(configured, await archive.holds(), `${day}T00:00:00Z`);
  return holds.find((h) => h.days.first <= day && day <= h.days.last);
}

/** Every day any of the holds covers, merged. */
export function heldDays(holds: readonly LegalHold[]): DayRange[] {
  return mergeDays(holds.map((h) => h.days));
}

/**
 * Puts an S3 Object Lock legal hold on every archived object (and its manifest) of the held
 * days: objects archived before the hold was placed can then not be deleted by anyone while
 * it stands. Idempotent. Returns how many objects each hold covers, by hold id and days.
 */
export async function lockHeldObjects(
  archive: TableArchive,
  holds: readonly LegalHold[],
): Promise<Map<LegalHold, number>> {
  const locked = new Map<LegalHold, number>();
  for (const hold of holds) {
    const { objects } = await archive.listObjects({
      startDate: hold.days.first,
      endDate: hold.days.last,
    });
    for (const obj of objects) await archive.setLegalHold(obj.object, true);
    locked.set(hold, objects.length);
  }
  return locked;
}

/**
 * Lifts the Object Lock legal hold of the archived objects in the released days that no hold
 * still in force covers. Returns how many objects it freed.
 */
export async function unlockReleasedObjects(
  archive: TableArchive,
  released: readonly DayRange[],
  stillHeld: readonly DayRange[],
): Promise<number> {
  const held = (day: string) => stillHeld.some((d) => d.first <= day && day <= d.last);
  let freed = 0;
  for (const range of mergeDays(released)) {
    const { objects } = await archive.listObjects({ startDate: range.first, endDate: range.last });
    for (const obj of objects) {
      if (held(obj.day)) continue;
      await archive.setLegalHold(obj.object, false);
      freed++;
    }
  }
  return freed;
}

/** The old rows each hold keeps in the table: eligible rows (older than the cutoff) of its days. */
export async function countHeldRows(
  io: { client: PoolClient; sql: TableSql },
  holds: readonly LegalHold[],
  cutoff: string,
  lockedObjects: ReadonlyMap<LegalHold, number>,
): Promise<HeldRows[]> {
  const held: HeldRows[] = [];
  for (const hold of holds) {
    const { rows } = await io.client.query<{ rows: number }>(io.sql.eligibleRowsBetween(), [
      `${hold.days.first}T00:00:00Z`,
      cutoff,
      `${nextDate(hold.days.last)}T00:00:00Z`,
    ]);
    held.push({
      hold: hold.id,
      reason: hold.reason,
      days: hold.days,
      rows: rows[0]!.rows,
      objectsLocked: lockedObjects.get(hold) ?? 0,
    });
  }
  return held;
}
