import {
  SEVERITY_OF,
  type NotificationEvent,
  type NotificationEventKind,
  type Severity,
} from '../shared/notification-types';
import { NO_END } from '../shared/archive-types';
import { formatBytes, formatCount } from '../util/units';

/**
 * A notification before it is rendered for a channel (email, Slack, Teams): every channel
 * says the same things, each in its own form.
 */
export interface Message {
  severity: Severity;
  /** One line, e.g. `Archive run failed: app public.audit_log`. */
  title: string;
  /** A sentence or two on what happened and what it means. */
  summary: string;
  /** Label and value pairs: database, table, event, workflow, run, time. */
  facts: [string, string][];
  /** A failed run's error. */
  error?: { type: string; message: string; step?: string };
  /** More lines: the holds that kept rows, ... */
  details: string[];
  /** The run in the Temporal Web UI. */
  link?: { url: string; label: string };
  /** Stable across retries: the key of this message (email Message-ID, logs). */
  eventId: string;
}

const TITLES: Readonly<Record<NotificationEventKind, string>> = {
  run_failed: 'Archive run failed',
  run_succeeded: 'Archive run done',
  schema_drift: 'Table schema changed',
  legal_hold: 'Old rows kept by a legal hold',
};

/**
 * The message of a run's event; `link` is the run in the Web UI, when there is one, and
 * `schemaChange` what changed in a schema_drift (e.g. `added note (text)`), when known.
 */
export function eventMessage(
  event: NotificationEvent,
  link?: string,
  schemaChange?: string,
): Message {
  const table = `${event.schema}.${event.table}`;
  const severity = SEVERITY_OF[event.kind];
  const facts: [string, string][] = [
    ['Database', event.database],
    ['Table', table],
    ['Event', `${event.kind} (${severity})`],
    ['Workflow', event.workflowId],
    ['Run', event.runId],
    ['Ended', event.at],
  ];
  const details: string[] = [];
  let summary: string;
  switch (event.kind) {
    case 'run_failed': {
      const error = event.error ?? { type: 'Error', message: 'unknown' };
      summary = `The archive run of ${table} in database ${event.database} failed${error.step ? ` in ${error.step}` : ''}: ${error.type}. Every batch it finished is archived, verified and deleted; the rows it did not get to stay in the table for the next run.`;
      break;
    }
    case 'run_succeeded': {
      const t = event.totals;
      summary = t
        ? `Archived ${formatCount(t.rowsArchived)} rows older than ${t.cutoff} from ${table} in database ${event.database}: ${formatCount(t.rowsDeleted)} deleted, ${formatCount(t.objects)} objects, ${formatBytes(t.bytes)}.`
        : `The archive run of ${table} in database ${event.database} is done.`;
      if (t) {
        facts.push(
          ['Rows archived', formatCount(t.rowsArchived)],
          ['Rows deleted', formatCount(t.rowsDeleted)],
        );
        if (t.rowsChanged > 0)
          details.push(
            `${formatCount(t.rowsChanged)} rows changed after they were exported: they stay in the table and are archived again by a later run.`,
          );
      }
      break;
    }
    case 'schema_drift':
      summary = `The schema of ${table} in database ${event.database} changed since its last snapshot${schemaChange ? ` (${schemaChange})` : ''}. The run archived with the new schema and recorded the change (schema_drift warn or follow). Every change: audit-archiver audit show -d ${event.database} -t ${table} --action schema-change.`;
      if (schemaChange) facts.push(['Change', schemaChange]);
      break;
    case 'legal_hold': {
      const held = event.held ?? [];
      const rows = held.reduce((sum, h) => sum + h.rows, 0);
      summary = `${formatCount(rows)} rows of ${table} in database ${event.database} are older than the retention period but stay in the table under legal holds; their archived objects are under an Object Lock legal hold where the bucket has Object Lock.`;
      for (const h of held)
        details.push(
          `hold ${h.hold}: ${h.first} to ${h.last === NO_END ? '(no end)' : h.last}, ${formatCount(h.rows)} rows (${h.reason})`,
        );
      if (event.heldNotListed) details.push(`and ${event.heldNotListed} more holds`);
      break;
    }
  }
  return {
    severity,
    title: `${TITLES[event.kind]}: ${event.database} ${table}`,
    summary,
    facts,
    ...(event.error && { error: event.error }),
    details,
    ...(link && { link: { url: link, label: 'Open the run in the Temporal Web UI' } }),
    eventId: event.id,
  };
}

/** The message `audit-archiver notify test` sends. */
export function testMessage(channel: string, at: string, id: string, sentFrom: string): Message {
  return {
    severity: 'info',
    title: `Test notification: ${channel}`,
    summary: `A test message from audit-archiver notify test: channel ${channel} reaches you. Archive runs report failures, schema drift and old rows kept by legal holds here (and successes, with min_severity info).`,
    facts: [
      ['Channel', channel],
      ['Sent from', sentFrom],
      ['Sent at', at],
    ],
    details: [],
    eventId: id,
  };
}
