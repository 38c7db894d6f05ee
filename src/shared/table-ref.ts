import { ApplicationFailure } from '@temporalio/common';

/**
 * How workflows name a configured table. Only names travel through Temporal: the worker
 * resolves every setting (host, retention, batch size, ...) from its own config, so a
 * schedule or a `temporal workflow start` needs no more than this.
 */
export interface TableRef {
  /** `name` of a database in the worker's config. */
  database: string;
  /** Defaults to `public`. */
  schema?: string;
  table: string;
}

export type ResolvedTableRef = Required<TableRef>;

/** Thrown by workflows for input that no retry can fix. */
export const INVALID_INPUT = 'InvalidWorkflowInput';

/**
 * Checks a table reference that may come from hand-written JSON (`temporal workflow start
 * --input`), failing the workflow with a plain message instead of retrying a bad input.
 */
export function resolveTableRef(input: unknown): ResolvedTableRef {
  const value = (input ?? {}) as Record<string, unknown>;
  const text = (field: string, fallback?: string): string => {
    const v = value[field] ?? fallback;
    if (typeof v !== 'string' || v === '') {
      throw ApplicationFailure.nonRetryable(
        `workflow input: "${field}" must be a non-empty string, e.g. {"database":"app","schema":"public","table":"audit_log"}`,
        INVALID_INPUT,
      );
    }
    return v;
  };
  return { database: text('database'), schema: text('schema', 'public'), table: text('table') };
}
