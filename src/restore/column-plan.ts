import type { SchemaSnapshot } from '../store/documents';
import type { ColumnPlan } from '../shared/restore-types';

export interface TargetColumn {
  name: string;
  type: string;
  generated: boolean;
}

/**
 * How an archived schema maps onto the target table as it is now: columns in both are
 * restored (PostgreSQL casts the archived text form to the target's type, so a widened type
 * just works), target-only columns take their defaults, generated columns are computed, and
 * archived columns the target lacks are reported as missing.
 */
export function planColumns(snapshot: SchemaSnapshot, target: readonly TargetColumn[]): ColumnPlan {
  const byName = new Map(target.map((c) => [c.name, c]));
  const archived = new Set(snapshot.columns.map((c) => c.name));
  const columns: ColumnPlan['columns'] = [];
  const missing: string[] = [];
  for (const column of snapshot.columns) {
    const into = byName.get(column.name);
    if (!into) missing.push(column.name);
    else if (!into.generated) {
      columns.push({
        name: column.name,
        archivedType: column.type,
        targetType: into.type,
        cast: into.type !== column.type,
      });
    }
  }
  return {
    schemaHash: snapshot.schemaHash,
    columns,
    defaulted: target.filter((c) => !archived.has(c.name) && !c.generated).map((c) => c.name),
    missing,
    generated: target.filter((c) => c.generated).map((c) => c.name),
  };
}

/** The plan in words, one line each, as printed before any row is written. */
export function describeColumnPlan(plan: ColumnPlan, dropMissing: boolean): string[] {
  const lines = [`schema ${plan.schemaHash.slice(0, 12)}: ${plan.columns.length} columns restored`];
  for (const c of plan.columns.filter((c) => c.cast)) {
    lines.push(
      `  ${c.name}: ${c.archivedType} -> ${c.targetType} (cast from the archived text form)`,
    );
  }
  if (plan.defaulted.length)
    lines.push(`  take their defaults (not in the archive): ${plan.defaulted.join(', ')}`);
  if (plan.generated.length)
    lines.push(`  computed by PostgreSQL (generated): ${plan.generated.join(', ')}`);
  if (plan.missing.length) {
    lines.push(
      dropMissing
        ? `  dropped (not in the target table, --drop-missing-columns): ${plan.missing.join(', ')}`
        : `  REFUSED: archived columns missing from the target table: ${plan.missing.join(', ')} (add them, or pass --drop-missing-columns to leave them out)`,
    );
  }
  return lines;
}
