import type { PoolClient } from 'pg';
import type { ConfiguredLegalHold } from '../config/tables';
import type { TableSurvey } from '../shared/archive-types';
import type { TableArchive } from '../store/archive-store';
import { mergeDays } from './days';
import {
  countHeldRows,
  heldDays,
  legalHoldsInForce,
  lockHeldObjects,
  type LegalHold,
} from './legal-holds';
import type { TableSql } from './table-sql';

export interface SurveyIo {
  client: PoolClient;
  sql: TableSql;
  archive: TableArchive;
  /** The config's legal hold on the table, or null. */
  legalHold: ConfiguredLegalHold | null;
  /** Whether the bucket has S3 Object Lock (asked only when a legal hold is in force). */
  objectLockEnabled: () => Promise<boolean>;
}

/**
 * What a run reads once it holds the table's lock: the days restores and legal holds keep
 * (so that no hold can be added unseen while the run deletes), and the old rows it leaves in
 * the table and why. Puts an Object Lock legal hold on the archived objects of legally held
 * days where the bucket has Object Lock.
 */
export async function surveyTable(io: SurveyIo, cutoff: string): Promise<TableSurvey> {
  const holds = await io.archive.holds();
  const legal = legalHoldsInForce(io.legalHold, holds, cutoff);
  const locked =
    legal.length > 0 && (await io.objectLockEnabled())
      ? await lockHeldObjects(io.archive, legal)
      : new Map<LegalHold, number>();
  const held = await countHeldRows(io, legal, cutoff, locked);
  const { rows } = await io.client.query<{ null_key: number; out_of_range: number }>(
    io.sql.skippedRows(),
    [cutoff],
  );
  const skipped = { nullKey: rows[0]!.null_key, outOfRange: rows[0]!.out_of_range };
  return {
    holds: mergeDays([
      ...holds.filter((h) => h.kind !== 'legal').flatMap((h) => h.days),
      ...heldDays(legal),
    ]),
    skipped: held.length > 0 ? { ...skipped, held } : skipped,
  };
}
