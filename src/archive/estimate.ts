import { gzipSync } from 'node:zlib';
import type { ClientBase } from 'pg';
import type { ArchiveEstimate } from '../shared/archive-types';
import type { TableSql } from './table-sql';

/** Rows read to estimate the compressed size of a row. */
const SAMPLE_ROWS = 2000;

/**
 * A dry run's answer: how many rows are older than the cutoff, their days and date range, and
 * an estimated compressed size from a gzip of a sample of them. Reads only.
 */
export async function estimateArchive(
  client: ClientBase,
  sql: TableSql,
  cutoff: string,
): Promise<ArchiveEstimate> {
  const { rows: days } = await client.query<{
    day: string;
    rows: string;
    first: string;
    last: string;
  }>(sql.eligibleByDay(), [cutoff]);
  const { rows: sample } = await client.query<{ line: string }>(sql.sampleRows(), [
    cutoff,
    SAMPLE_ROWS,
  ]);
  const sampleText = sample.map((r) => `${r.line}\n`).join('');
  const bytesPerRow = sample.length === 0 ? 0 : gzipSync(sampleText).length / sample.length;
  const rows = days.reduce((sum, d) => sum + Number(d.rows), 0);
  return {
    rows,
    firstTimestamp: days[0]?.first ?? null,
    lastTimestamp: days.at(-1)?.last ?? null,
    days: days.map((d) => ({ day: d.day, rows: Number(d.rows) })),
    estimatedBytes: Math.round(bytesPerRow * rows),
  };
}
