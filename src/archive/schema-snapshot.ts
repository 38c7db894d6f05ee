import { createHash } from 'node:crypto';
import type { SchemaChange, SchemaSnapshot, SnapshotColumn } from '../store/documents';
import { SCHEMA_CHANGE_FORMAT } from '../store/documents';

/** What the schema hash covers: everything that decides how archived rows read back. */
export interface TableShape {
  columns: SnapshotColumn[];
  primaryKey: string[];
}

/**
 * SHA-256 of the table's shape in a fixed canonical form, so the same columns, types, order
 * and key always give the same hash, on any machine.
 */
export function schemaHash(shape: TableShape): string {
  const canonical = JSON.stringify({
    columns: shape.columns.map((c) => [c.name, c.type, c.nullable]),
    primaryKey: shape.primaryKey,
  });
  return createHash('sha256').update(canonical).digest('hex');
}

/** What changed between two snapshots of a table. */
export function diffSchemas(
  before: SchemaSnapshot,
  after: SchemaSnapshot,
  at: string,
): SchemaChange {
  const byName = (cols: SnapshotColumn[]) => new Map(cols.map((c) => [c.name, c]));
  const old = byName(before.columns);
  const now = byName(after.columns);
  const same = (a: SnapshotColumn, b: SnapshotColumn) =>
    a.type === b.type && a.nullable === b.nullable;
  return {
    format: SCHEMA_CHANGE_FORMAT,
    from: before.schemaHash,
    to: after.schemaHash,
    detectedAt: at,
    added: after.columns.filter((c) => !old.has(c.name)),
    removed: before.columns.filter((c) => !now.has(c.name)),
    changed: after.columns
      .filter((c) => old.has(c.name) && !same(old.get(c.name)!, c))
      .map((c) => ({ name: c.name, from: old.get(c.name)!, to: c })),
    primaryKey:
      before.primaryKey.join(',') === after.primaryKey.join(',')
        ? null
        : { from: before.primaryKey, to: after.primaryKey },
  };
}

/** A change in words: `added a (text), b (int); removed c; d text -> jsonb; key id -> (id, at)`. */
export function describeChange(change: SchemaChange): string {
  const parts = [
    change.added.length > 0 &&
      `added ${change.added.map((c) => `${c.name} (${c.type})`).join(', ')}`,
    change.removed.length > 0 && `removed ${change.removed.map((c) => c.name).join(', ')}`,
    ...change.changed.map(
      (c) =>
        `${c.name} ${c.from.type}${c.from.nullable ? '' : ' not null'} -> ${c.to.type}${c.to.nullable ? '' : ' not null'}`,
    ),
    change.primaryKey &&
      `primary key (${change.primaryKey.from.join(', ')}) -> (${change.primaryKey.to.join(', ')})`,
  ].filter(Boolean);
  return parts.length > 0 ? parts.join('; ') : 'column order or details changed';
}
