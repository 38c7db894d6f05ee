/**
 * How database, schema and table names become parts of bucket keys and workflow ids. Pure
 * code: workflows import it for their ids, the store for its keys.
 *
 * The mapping is injective: two different (database, schema, table) triples never give the
 * same path, whatever characters the names hold. Each name is percent-encoded where it could
 * be confused with the path's own punctuation (`/` between segments, `.` between schema and
 * table, `%` the escape itself, and control characters), so the separators never occur
 * inside an encoded name. Ordinary names (letters, digits, `_`, `-`, spaces, unicode) stay as
 * written, so the bucket stays readable.
 */

/** Characters of a name that are percent-encoded in a key or id segment. */
function needsEscape(char: string, code: number): boolean {
  return char === '%' || char === '/' || char === '.' || code < 0x20 || code === 0x7f;
}

/** One name as a segment of a key or workflow id (see above). */
export function nameSegment(name: string): string {
  let segment = '';
  for (const char of name) {
    const code = char.codePointAt(0)!;
    segment += needsEscape(char, code)
      ? `%${code.toString(16).toUpperCase().padStart(2, '0')}`
      : char;
  }
  return segment;
}

/** The name a segment was made from: the inverse of nameSegment. */
export function nameOfSegment(segment: string): string {
  return segment.replace(/%([0-9A-F]{2})/g, (_, hex: string) =>
    String.fromCharCode(parseInt(hex, 16)),
  );
}

export interface TableNames {
  database: string;
  schema: string;
  table: string;
}

/** `{database}/{schema}.{table}`, each name encoded: a table's place in keys and ids. */
export function tablePath(names: TableNames): string {
  return `${nameSegment(names.database)}/${nameSegment(names.schema)}.${nameSegment(names.table)}`;
}

/** The names a tablePath was made from, or undefined when it is not one. */
export function namesOfTablePath(path: string): TableNames | undefined {
  const m = /^([^/]+)\/([^/.]+)\.([^/.]+)$/.exec(path);
  if (!m) return undefined;
  return {
    database: nameOfSegment(m[1]!),
    schema: nameOfSegment(m[2]!),
    table: nameOfSegment(m[3]!),
  };
}
