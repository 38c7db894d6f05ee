/**
 * The one place identifiers become SQL text (docs/architecture.md, guarantee 10). Names from the config or the
 * catalog are always quoted, so case, spaces, quotes and keywords survive unchanged.
 */
export function quoteIdent(name: string): string {
  if (name.includes('\u0000')) throw new Error('identifier contains a NUL character');
  return `"${name.replace(/"/g, '""')}"`;
}

/** `"schema"."table"` */
export function qualifiedName(schema: string, table: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}
