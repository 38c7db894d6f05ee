/**
 * Where things live in the bucket (CONTRACT §4). The layout is part of the archive's format:
 * restore and validate find everything from these keys alone, so a change here is a format
 * change.
 *
 *   {prefix}{database}/{schema}.{table}/_schema/{schemaHash}.json
 */

/**
 * A name as one key segment. Identifiers may hold any character; `/` would split the
 * segment and `%` is the escape, so both (and control characters) are percent-encoded.
 */
export function keySegment(name: string): string {
  let segment = '';
  for (const char of name) {
    const code = char.codePointAt(0)!;
    const escape = char === '%' || char === '/' || code < 0x20 || code === 0x7f;
    segment += escape ? `%${code.toString(16).toUpperCase().padStart(2, '0')}` : char;
  }
  return segment;
}

export interface TableLocation {
  prefix: string;
  database: string;
  schema: string;
  table: string;
}

/** `{prefix}{database}/{schema}.{table}/` */
export function tablePrefix(at: TableLocation): string {
  return `${at.prefix}${keySegment(at.database)}/${keySegment(at.schema)}.${keySegment(at.table)}/`;
}

/** Schema snapshots are content-addressed: one object per distinct schema, never rewritten. */
export function schemaSnapshotKey(at: TableLocation, schemaHash: string): string {
  return `${tablePrefix(at)}_schema/${schemaHash}.json`;
}
