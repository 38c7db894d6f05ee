/**
 * What the application knows about its own rows, built only from what PostgreSQL confirmed:
 * every INSERT, UPDATE and DELETE returns the rows it touched (RETURNING) and counts only
 * once its transaction is known to have committed. A row the archiver moved to the bucket is
 * still a row of the application: it must come back, in its latest version, on restore.
 */
export interface ModelRow {
  /** The row's latest version, as `to_jsonb(row)::text` in a UTC session. */
  content: string;
  /** The application deleted it: it must be nowhere. */
  deleted: boolean;
  /** An UPDATE or DELETE found it gone from the table: the archiver took it. */
  archived: boolean;
  /** Its timestamp is older than the retention period (an UPDATE may move it). */
  old: boolean;
  /** The UTC day of its timestamp: the archive's partition, and what a run works on. */
  day: string;
}

/** The UTC day of a row's `created_at`, from its `to_jsonb` text. */
function dayOf(content: string): string {
  const { created_at: at } = JSON.parse(content) as { created_at?: string };
  return typeof at === 'string' ? new Date(at).toISOString().slice(0, 10) : '';
}

export class RowModel {
  readonly rows = new Map<string, ModelRow>();
  /** Rows believed to be in the table, for picking UPDATE and DELETE targets quickly. */
  private readonly candidates: string[] = [];
  private readonly position = new Map<string, number>();
  /** Statements whose commit could not be confirmed either way: their rows are not judged. */
  readonly uncertain = new Set<string>();
  uncertainStatements = 0;

  private addCandidate(id: string): void {
    if (this.position.has(id)) return;
    this.position.set(id, this.candidates.length);
    this.candidates.push(id);
  }

  private dropCandidate(id: string): void {
    const at = this.position.get(id);
    if (at === undefined) return;
    const last = this.candidates.pop()!;
    if (last !== id) {
      this.candidates[at] = last;
      this.position.set(last, at);
    }
    this.position.delete(id);
  }

  inserted(id: string, content: string, old: boolean): void {
    this.rows.set(id, { content, deleted: false, archived: false, old, day: dayOf(content) });
    this.addCandidate(id);
  }

  updated(id: string, content: string, old: boolean): void {
    const row = this.rows.get(id);
    if (!row) throw new Error(`model: an UPDATE returned row ${id}, which was never inserted`);
    row.content = content;
    row.old = old;
    row.day = dayOf(content);
  }

  deleted(id: string): void {
    const row = this.rows.get(id);
    if (!row) throw new Error(`model: a DELETE returned row ${id}, which was never inserted`);
    row.deleted = true;
    this.dropCandidate(id);
  }

  /** An UPDATE or DELETE of `id` touched no row: the archiver has taken it (or will not be asked again). */
  missing(id: string): void {
    const row = this.rows.get(id);
    if (row && !row.deleted) row.archived = true;
    this.dropCandidate(id);
  }

  /**
   * A row believed to be in the table; `pickIndex` gets a number in [0, n). With `day`, a
   * row of that day if a few random tries find one (the day a run is archiving now).
   */
  pick(pickIndex: (n: number) => number, day?: string): string | undefined {
    if (this.candidates.length === 0) return undefined;
    let id = this.candidates[pickIndex(this.candidates.length)];
    for (let tries = 1; day !== undefined && tries < 40; tries++) {
      if (id !== undefined && this.rows.get(id)?.day === day) break;
      id = this.candidates[pickIndex(this.candidates.length)];
    }
    return id;
  }

  get size(): number {
    return this.rows.size;
  }

  get live(): number {
    let n = 0;
    for (const row of this.rows.values()) if (!row.deleted) n++;
    return n;
  }
}

/** A row as read from a table: its key and `to_jsonb(row)::text`. */
export interface TableRow {
  id: string;
  content: string;
}

export interface Finding {
  id: string;
  detail: string;
}

/** Each list holds every row found in that state; the counts are their lengths. */
export interface Comparison {
  /** Rows the application still has that are in neither the table nor the restored copy. */
  lost: Finding[];
  /** Rows that are in both, or twice in one. */
  duplicated: Finding[];
  /** Restored rows whose content is not the latest version (or that the application deleted). */
  stale: Finding[];
  /**
   * Rows of the source table that disagree with the model (unknown, deleted, other content).
   * Nothing but the application writes the source table while the harness compares, so
   * these mean the harness itself is wrong: the run fails, whatever the other counts say.
   */
  modelMismatch: Finding[];
  /** Rows in the restored copy that the application never wrote. */
  unknownRestored: Finding[];
  /** Rows left out of the judgement because a statement's outcome stayed unknown. */
  skippedUncertain: number;
  inSource: number;
  inRestored: number;
}

function group(rows: readonly TableRow[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const r of rows) {
    const list = out.get(r.id);
    if (list) list.push(r.content);
    else out.set(r.id, [r.content]);
  }
  return out;
}

const short = (content: string) => (content.length > 160 ? `${content.slice(0, 157)}...` : content);

/**
 * Judges the source table and the restored copy against the model. Each row the application
 * still has must be in exactly one of the two, with its latest content; a row it deleted
 * must be in neither.
 */
export function compare(
  model: RowModel,
  sourceRows: readonly TableRow[],
  restoredRows: readonly TableRow[],
): Comparison {
  const source = group(sourceRows);
  const restored = group(restoredRows);
  const out: Comparison = {
    lost: [],
    duplicated: [],
    stale: [],
    modelMismatch: [],
    unknownRestored: [],
    skippedUncertain: 0,
    inSource: sourceRows.length,
    inRestored: restoredRows.length,
  };
  for (const [id, row] of model.rows) {
    if (model.uncertain.has(id)) {
      out.skippedUncertain++;
      continue;
    }
    const inSource = source.get(id) ?? [];
    const inRestored = restored.get(id) ?? [];
    if (row.deleted) {
      if (inSource.length > 0)
        out.modelMismatch.push({
          id,
          detail: 'deleted by the application, yet in the source table',
        });
      if (inRestored.length > 0)
        out.stale.push({
          id,
          detail: `deleted by the application, brought back by the restore as ${short(inRestored[0]!)}`,
        });
      continue;
    }
    if (inSource.length + inRestored.length === 0) {
      out.lost.push({ id, detail: `latest version ${short(row.content)}` });
      continue;
    }
    if (inSource.length + inRestored.length > 1)
      out.duplicated.push({
        id,
        detail: `${inSource.length} in the source table, ${inRestored.length} in the restored copy`,
      });
    const wrongSource = inSource.find((c) => c !== row.content);
    if (wrongSource !== undefined)
      out.modelMismatch.push({
        id,
        detail: `source has ${short(wrongSource)}, the application last wrote ${short(row.content)}`,
      });
    const wrongRestored = inRestored.find((c) => c !== row.content);
    if (wrongRestored !== undefined)
      out.stale.push({
        id,
        detail: `restored ${short(wrongRestored)}, latest is ${short(row.content)}`,
      });
  }
  for (const id of source.keys()) {
    if (!model.rows.has(id) && !model.uncertain.has(id))
      out.modelMismatch.push({
        id,
        detail: 'in the source table, never written by the application',
      });
  }
  for (const [id, contents] of restored) {
    if (!model.rows.has(id) && !model.uncertain.has(id))
      out.unknownRestored.push({
        id,
        detail: `restored ${short(contents[0]!)}, never written by the application`,
      });
  }
  return out;
}
