import type { ArchiveProgress, ArchiveTableOutcome } from './archive-types';
import type { RunOutcome } from './search-attributes';

/**
 * What a run tells an operator in the Temporal Web UI besides its id and search attributes
 * (docs/web-ui.md): its memo, and the text of its static details and current details. Pure
 * code: the CLI, the workflows and the tests build the same text from here.
 */

/** The memo every run carries. */
export interface RunMemo {
  /**
   * `sha256:…` of the config the run was started with (src/config/digest.ts); for a run
   * started without the CLI, the worker's, set by the workflow as it plans.
   */
  configDigest?: string;
  /** Who or what started it: the CLI with user and host, a parent run, a schedule. */
  startedBy?: string;
  /** The worker's config digest, set only when it differs from configDigest. */
  workerConfigDigest?: string;
}

/** One line of a static details list (markdown, which the Web UI renders). */
function item(label: string, value: string): string {
  return `- **${label}:** ${value}`;
}

export interface DetailsLines {
  /** What the run works on, e.g. `app public.audit_log`. */
  scope: string;
  /** Which rows, e.g. the cutoff or a day range; omitted when it says nothing. */
  rows?: string;
  /** The command that started it, or the parent run. */
  command?: string;
  memo: RunMemo;
}

/**
 * The static details of a run, as a short markdown list: the Web UI shows about four lines
 * without scrolling, so the config digest stays in the memo (its own tab).
 */
export function staticDetails(lines: DetailsLines): string {
  return [
    item('Scope', lines.scope),
    lines.rows !== undefined && item('Rows', lines.rows),
    lines.command !== undefined && item('Started with', lines.command),
    lines.memo.startedBy !== undefined && item('Started by', lines.memo.startedBy),
  ]
    .filter((l): l is string => typeof l === 'string')
    .join('\n');
}

/** What an archive run's rows are when only its retention is known (the cutoff is fixed at start). */
export function retentionRows(retentionDays: number | undefined): string {
  return retentionDays === undefined
    ? "older than the table's retention_days at the run's start"
    : `older than ${retentionDays} days (retention_days) at the run's start`;
}

/** A memo without the fields that are not known, so no empty values are stored. */
export function runMemo(memo: RunMemo): Record<string, string> {
  return Object.fromEntries(
    Object.entries(memo).filter((e): e is [string, string] => typeof e[1] === 'string'),
  );
}

/** `1,234,567`; no Intl, so it reads the same on every worker. */
function count(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/**
 * The current details of a running archive: what it does now (the day and rows so far,
 * what throttles it, a rest, a fault it waits out) in one line, then the cutoff.
 */
export function archiveCurrentDetails(p: ArchiveProgress): string {
  const done = `${count(p.totals.rowsArchived)} rows archived in ${count(p.totals.batches)} batches`;
  const day = p.currentDay ? ` (day ${p.currentDay})` : '';
  let now: string;
  if (p.waiting) {
    now = `Waiting out a fault since ${p.waiting.since} (${p.waiting.step}): ${p.waiting.lastError}; next try at ${p.waiting.nextTryAt}`;
  } else if (p.state === 'throttled' && p.throttledUntil) {
    now = `Throttled by ${(p.throttledBy ?? []).join(', ') || 'pacing'} until ${p.throttledUntil}: ${p.throttleReason ?? ''}`;
  } else if (p.state === 'pausing') {
    now = `Resting between batches${day}`;
  } else if (p.state === 'waiting for lock') {
    now = 'Waiting for the table lock';
  } else if (p.state === 'done') {
    now = `Finished: ${done}`;
  } else if (p.state === 'dry run') {
    now = 'Estimating what a run would archive (dry run)';
  } else {
    now = `Archiving${day}: ${done}${p.batchSize ? `, ${count(p.batchSize)} rows per batch` : ''}`;
  }
  if (p.state !== 'done' && p.state !== 'archiving' && p.totals.batches > 0) now += `; ${done}`;
  return p.cutoff ? `${now}\n\nCutoff: rows older than ${p.cutoff}` : now;
}

/** The ArchiveOutcome of an ArchiveTable run that returned: archived only when it moved rows. */
export function archiveTableOutcome(result: ArchiveTableOutcome): RunOutcome {
  if (result.outcome !== 'archived') return result.outcome;
  return result.rowsArchived > 0 ? 'archived' : 'nothing-to-archive';
}

/**
 * The current details an archive run leaves as it ends: its outcome in words, then the
 * cutoff. (The search attribute ArchiveOutcome keeps the outcome once no worker answers.)
 */
export function archiveEndDetails(result: ArchiveTableOutcome): string {
  const outcome = archiveTableOutcome(result);
  switch (result.outcome) {
    case 'locked':
      return `Outcome: ${outcome}. Another run holds the table: ${result.heldBy}`;
    case 'dry-run':
      return `Outcome: ${outcome}. Would archive ${count(result.estimate.rows)} rows\n\nCutoff: rows older than ${result.cutoff}`;
    case 'archived':
      return `Outcome: ${outcome}. ${count(result.rowsArchived)} rows archived in ${count(result.objects)} objects, ${count(result.rowsDeleted)} deleted\n\nCutoff: rows older than ${result.cutoff}`;
  }
}
