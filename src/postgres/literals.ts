/**
 * The one place values become SQL literals (STYLE §7). Only COPY needs it, because COPY takes
 * no bind parameters; every other statement passes values as parameters. Sessions run with
 * standard_conforming_strings=on (src/postgres/pool.ts), so a backslash is an ordinary
 * character inside '...'.
 */
export function quoteLiteral(value: string): string {
  if (value.includes('\u0000')) throw new Error('a SQL literal cannot contain a NUL character');
  return `'${value.replace(/'/g, "''")}'`;
}
