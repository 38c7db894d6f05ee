import type { ResolvedTableRef } from './table-ref';

/** Input of the Validate workflow: which archives to check (every configured table by default). */
export interface ValidateInput {
  database?: string;
  /** `schema.table` or a bare table name. */
  table?: string;
  /** Inclusive UTC day partitions, YYYY-MM-DD. */
  startDate?: string;
  endDate?: string;
  /** Archived rows per table looked up in the source database; default DEFAULT_SAMPLE_SIZE. */
  sampleSize?: number;
}

export const DEFAULT_SAMPLE_SIZE = 20;
/** Problems a table reports in full; the rest are only counted, so the result stays small. */
export const MAX_PROBLEMS_PER_TABLE = 200;

export interface ValidateTableInput {
  table: ResolvedTableRef;
  startDate?: string | undefined;
  endDate?: string | undefined;
  sampleSize: number;
  maxProblems: number;
}

/** One thing wrong, named by the bucket key it concerns. */
export interface ValidationProblem {
  key: string;
  problem: string;
}

export interface ValidateTableResult extends ResolvedTableRef {
  /** Data objects checked in the day range. */
  objects: number;
  /** Rows read back from them. */
  rows: number;
  /** Archived rows looked up in the source table. */
  sampled: number;
  /** At most `maxProblems`, ordered by key. */
  problems: ValidationProblem[];
  /** Every problem found, including those not listed. */
  problemCount: number;
}

export interface ValidateResult {
  tables: ValidateTableResult[];
  /** Every problem found, over all tables. */
  problems: number;
  /** True when some table found more problems than it lists. */
  truncated: boolean;
}

/** The `progress` query of a Validate run. */
export interface ValidateProgress {
  tablesTotal: number;
  tablesDone: number;
  /** Data objects of the finished tables. */
  objectsChecked: number;
  problems: number;
  running: ResolvedTableRef[];
  finished: Omit<ValidateTableResult, 'problems'>[];
}

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Whether `value` is a real calendar day written YYYY-MM-DD. */
export function isDay(value: string): boolean {
  const m = DAY.exec(value);
  if (!m) return false;
  const date = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return date.toISOString().slice(0, 10) === value;
}

/**
 * What is wrong with a Validate input, or undefined. Pure, so the CLI refuses a bad range
 * before it starts anything and the workflow refuses the same input given by hand.
 */
export function validateInputProblem(input: ValidateInput): string | undefined {
  for (const field of ['startDate', 'endDate'] as const) {
    const value: unknown = input[field];
    if (value !== undefined && (typeof value !== 'string' || !isDay(value))) {
      return `${field} must be a day written YYYY-MM-DD, got ${JSON.stringify(value)}`;
    }
  }
  if (input.startDate && input.endDate && input.startDate > input.endDate) {
    return `startDate ${input.startDate} is after endDate ${input.endDate}`;
  }
  const size: unknown = input.sampleSize;
  if (size !== undefined && (typeof size !== 'number' || !Number.isInteger(size) || size < 0)) {
    return `sampleSize must be a whole number of rows, 0 or more, got ${JSON.stringify(size)}`;
  }
  return undefined;
}

/** `validate/<database>/<schema>.<table>/<when>` or `validate/all/<when>`: readable and unique. */
export function validateWorkflowId(filter: { database?: string; table?: string }, when: string) {
  const scope = [filter.database, filter.table].filter(Boolean).join('/') || 'all';
  return `validate/${scope}/${when}`;
}
