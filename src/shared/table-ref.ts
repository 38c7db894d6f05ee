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

/**
 * A table name as a person writes it: `table` or `schema.table`, with double quotes around a
 * name that holds a dot or a quote, as in SQL (`"a.b".c`, `a."b.c"`, `"say ""hi"""`).
 * Undefined when it is not one or two names (an unclosed quote, an empty name, `a.b.c`).
 */
export function parseTableName(text: string): { schema?: string; table: string } | undefined {
  const parts: string[] = [];
  let i = 0;
  for (;;) {
    let part = '';
    if (text[i] === '"') {
      for (i++; ; i++) {
        if (i >= text.length) return undefined;
        if (text[i] !== '"') part += text[i];
        else if (text[i + 1] === '"') part += text[i++];
        else break;
      }
      i++;
    } else {
      const dot = text.indexOf('.', i);
      part = text.slice(i, dot < 0 ? text.length : dot);
      if (part.includes('"')) return undefined;
      i += part.length;
    }
    if (part === '') return undefined;
    parts.push(part);
    if (i === text.length) break;
    if (text[i] !== '.') return undefined;
    i++;
  }
  if (parts.length === 1) return { table: parts[0]! };
  if (parts.length === 2) return { schema: parts[0]!, table: parts[1]! };
  return undefined;
}
