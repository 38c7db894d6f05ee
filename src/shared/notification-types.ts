import {
  ActivityFailure,
  ApplicationFailure,
  CancelledFailure,
  ChildWorkflowFailure,
} from '@temporalio/common';
import type { ArchiveTableOutcome, ArchiveTotals } from './archive-types';
import type { ResolvedTableRef } from './table-ref';

/**
 * Notifications of how archive runs end (docs/notifications.md): the events, their
 * severities, and the events of a run's end, built where the run ends. Pure: workflows
 * import it; the worker decides which channels hear of them (activities/notify.ts).
 */

/** What a notification tells, as `notifications.channels.<name>.events` names it. */
export const NOTIFICATION_EVENTS = [
  'run_failed',
  'run_succeeded',
  'schema_drift',
  'legal_hold',
] as const;
export type NotificationEventKind = (typeof NOTIFICATION_EVENTS)[number];

/** Lowest first: a channel hears of events at or above its `min_severity`. */
export const SEVERITIES = ['info', 'warning', 'error'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** The severity of each event: a failed run is an error; drift and held rows need a look. */
export const SEVERITY_OF: Readonly<Record<NotificationEventKind, Severity>> = {
  run_failed: 'error',
  schema_drift: 'warning',
  legal_hold: 'warning',
  run_succeeded: 'info',
};

export function atLeast(severity: Severity, min: Severity): boolean {
  return SEVERITIES.indexOf(severity) >= SEVERITIES.indexOf(min);
}

/** Longest error message a notification carries (the rest is in the Web UI). */
export const MAX_ERROR_CHARS = 1_500;
/** Most holds listed in one legal-hold notification. */
export const MAX_HOLDS_LISTED = 10;

/**
 * One event of a run's end. `id` is the same on every retry and replay of the run's end
 * (workflow id, the chain's first run id, the kind): a channel's message is keyed by it.
 * Names, counts and an error message only: no row data, no secret.
 */
export interface NotificationEvent {
  id: string;
  kind: NotificationEventKind;
  database: string;
  schema: string;
  table: string;
  workflowId: string;
  /** The run that ended (the last of a continue-as-new chain). */
  runId: string;
  /** The first run of the chain: with the workflow id, it names the whole run. */
  firstRunId: string;
  /** When the run ended (workflow time, ISO 8601). */
  at: string;
  /** run_failed: the innermost failure's type and message, and the step it failed in. */
  error?: { type: string; message: string; step?: string };
  /** run_succeeded: what the run did. */
  totals?: ArchiveTotals & { cutoff: string };
  /** legal_hold: the holds that kept old rows in the table, and their rows. */
  held?: { hold: string; reason: string; first: string; last: string; rows: number }[];
  /** legal_hold: holds left out of `held` (more than MAX_HOLDS_LISTED). */
  heldNotListed?: number;
}

export interface PlanNotificationsInput {
  database: string;
  kinds: NotificationEventKind[];
}

/** One message to send: an event to a channel. */
export interface PlannedDelivery {
  kind: NotificationEventKind;
  channel: string;
}

export interface PlanNotificationsResult {
  deliveries: PlannedDelivery[];
}

export interface SendNotificationInput {
  event: NotificationEvent;
  channel: string;
}

export interface SendNotificationResult {
  channel: string;
  /** What the receiver answered (an HTTP status, the SMTP server's reply). */
  answer: string;
}

/** Where an event comes from: the table and the run that ended. */
export interface RunEndContext extends ResolvedTableRef {
  workflowId: string;
  runId: string;
  firstRunId: string;
  at: string;
}

/** How a run ended: its outcome, or the error it ends with. */
export type RunEnd = { outcome: ArchiveTableOutcome } | { error: unknown };

/**
 * The events of a run's end: a failure (cancellations are not reported: someone asked for
 * them), or a success with its schema drift and legal-hold skips. Dry runs and runs that
 * found the table locked tell nothing.
 */
export function runEndEvents(run: RunEndContext, end: RunEnd): NotificationEvent[] {
  const event = (kind: NotificationEventKind): NotificationEvent => ({
    id: `${run.workflowId}/${run.firstRunId}/${kind}`,
    kind,
    database: run.database,
    schema: run.schema,
    table: run.table,
    workflowId: run.workflowId,
    runId: run.runId,
    firstRunId: run.firstRunId,
    at: run.at,
  });
  if ('error' in end) {
    if (isCancellation(end.error)) return [];
    return [{ ...event('run_failed'), error: describeFailure(end.error) }];
  }
  const outcome = end.outcome;
  if (outcome.outcome !== 'archived') return [];
  const { cutoff, schemaChanged, skipped } = outcome;
  const totals = {
    cutoff,
    batches: outcome.batches,
    rowsArchived: outcome.rowsArchived,
    rowsDeleted: outcome.rowsDeleted,
    rowsChanged: outcome.rowsChanged,
    bytes: outcome.bytes,
    objects: outcome.objects,
  };
  const events: NotificationEvent[] = [{ ...event('run_succeeded'), totals }];
  if (schemaChanged) events.push(event('schema_drift'));
  const held = skipped.held ?? [];
  if (held.some((h) => h.rows > 0)) {
    const withRows = held.filter((h) => h.rows > 0);
    events.push({
      ...event('legal_hold'),
      held: withRows.slice(0, MAX_HOLDS_LISTED).map((h) => ({
        hold: h.hold,
        reason: h.reason,
        first: h.days.first,
        last: h.days.last,
        rows: h.rows,
      })),
      ...(withRows.length > MAX_HOLDS_LISTED && {
        heldNotListed: withRows.length - MAX_HOLDS_LISTED,
      }),
    });
  }
  return events;
}

/** A cancellation, of the run itself or of the step it was in. */
function isCancellation(err: unknown): boolean {
  for (let e: unknown = err; ; e = (e as Error).cause) {
    if (e instanceof CancelledFailure) return true;
    if (!(e instanceof ActivityFailure || e instanceof ChildWorkflowFailure)) return false;
  }
}

/**
 * The innermost failure of a chain (an activity's, a child's): its type (the error class,
 * e.g. SchemaDriftError), its message (bounded), and the activity it came from.
 */
export function describeFailure(err: unknown): NonNullable<NotificationEvent['error']> {
  let step: string | undefined;
  let inner: unknown = err;
  for (;;) {
    if (inner instanceof ActivityFailure && inner.activityType) step = inner.activityType;
    if (!(inner instanceof Error) || !(inner.cause instanceof Error)) break;
    inner = inner.cause;
  }
  let type = 'Error';
  if (inner instanceof ApplicationFailure && inner.type) type = inner.type;
  else if (inner instanceof Error) type = inner.name;
  const text = inner instanceof Error ? inner.message : String(inner);
  const message = text.length > MAX_ERROR_CHARS ? `${text.slice(0, MAX_ERROR_CHARS - 1)}…` : text;
  return { type, message, ...(step !== undefined && { step }) };
}
