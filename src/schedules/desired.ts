import { createHash } from 'node:crypto';
import type { ScheduleOptions, ScheduleOverlapPolicy } from '@temporalio/client';
import type { SearchAttributePair } from '@temporalio/common';
import { selectTables, type Config } from '../config';
import { parseDuration, type ScheduleConfig } from '../config/schedules';
import type { ArchiveAllInput } from '../shared/run-types';
import { ArchiveDatabase, ArchiveTable } from '../shared/search-attributes';

/** Every schedule the archiver creates has an id that starts so (`audit-archiver/nightly`). */
export const SCHEDULE_ID_PREFIX = 'audit-archiver/';
/** The value of `managedBy` in the memo of every schedule the archiver created. */
export const MANAGED_BY = 'audit-archiver';

/**
 * The memo a schedule is created with, and never changes (Temporal cannot update a
 * schedule's memo): it marks the schedule as the archiver's, for the deployment that polls
 * `taskQueue`. A schedule with the id prefix but without this memo was made by someone else
 * and is left alone.
 */
export interface ScheduleMarker {
  managedBy: typeof MANAGED_BY;
  taskQueue: string;
  name: string;
}

/**
 * The config entry as apply last wrote it, normalised (every default filled in, cron always
 * a list). It travels in the memo of the schedule's action, which apply can update: the
 * next apply compares it with the config to say what changed, and every run the schedule
 * starts carries it (visible in the Web UI).
 */
export interface ScheduleConfigView {
  database: string | null;
  /** `schema.table` as resolved from the config, or null. */
  table: string | null;
  cron: string[] | null;
  every: string | null;
  offset: string | null;
  time_zone: string;
  overlap: ScheduleConfig['overlap'];
  catchup_window: string;
  jitter: string;
  paused: boolean;
  note: string | null;
}

/** The memo of the schedule's action, so of each workflow run it starts. */
export interface ScheduleActionMemo {
  scheduledBy: string;
  scheduleDigest: string;
  scheduleConfig: ScheduleConfigView;
}

/** A configured schedule, compiled to the options of a Temporal Schedule. */
export interface DesiredSchedule {
  name: string;
  id: string;
  view: ScheduleConfigView;
  digest: string;
  options: ScheduleOptions;
}

export const scheduleId = (name: string): string => `${SCHEDULE_ID_PREFIX}${name}`;

/** The workflow id of the runs a schedule starts; the server appends the scheduled time. */
export const scheduledWorkflowId = (name: string): string => `archive-run/scheduled/${name}`;

export const OVERLAP: Record<ScheduleConfig['overlap'], ScheduleOverlapPolicy> = {
  skip: 'SKIP',
  buffer_one: 'BUFFER_ONE',
  buffer_all: 'BUFFER_ALL',
  cancel_other: 'CANCEL_OTHER',
  terminate_other: 'TERMINATE_OTHER',
  allow_all: 'ALLOW_ALL',
};

/** A name as a table filter has to write it to mean only that name (`"a.b"`). */
function quoted(name: string): string {
  return /[."]/.test(name) ? `"${name.replace(/"/g, '""')}"` : name;
}

/** `all tables`, `database app`, `table public.audit_log of app`. */
export function scopeText(view: Pick<ScheduleConfigView, 'database' | 'table'>): string {
  if (view.table !== null) return `table ${view.table} of ${view.database}`;
  if (view.database !== null) return `database ${view.database}`;
  return 'all tables';
}

/** `cron 30 2 * * * (Europe/Berlin)`, `every 6h`, `every 1d offset 2h`. */
export function whenText(view: ScheduleConfigView): string {
  if (view.cron !== null)
    return `cron ${view.cron.map((c) => `"${c}"`).join(', ')} (${view.time_zone})`;
  return `every ${view.every}${view.offset ? ` offset ${view.offset}` : ''}`;
}

/** A SHA-256 of the view with its keys sorted: equal views, equal digests. */
export function viewDigest(view: ScheduleConfigView): string {
  const sorted = Object.fromEntries(Object.entries(view).sort(([a], [b]) => a.localeCompare(b)));
  return `sha256:${createHash('sha256').update(JSON.stringify(sorted)).digest('hex')}`;
}

/**
 * The Temporal Schedules the config asks for, one per `schedules` entry. Each starts the
 * ArchiveAll workflow (the same run `audit-archiver archive` starts) on the config's task
 * queue, with its scope as input; names and the table's schema are resolved here, from the
 * config, so a schedule never carries a name the worker cannot find.
 */
export function desiredSchedules(config: Config): DesiredSchedule[] {
  const taskQueue = config.temporal.task_queue;
  return Object.entries(config.schedules).map(([name, s]) => {
    const table =
      s.database !== undefined && s.table !== undefined
        ? selectTables(config, { database: s.database, table: s.table })[0]!
        : undefined;
    const view: ScheduleConfigView = {
      database: s.database ?? null,
      table: table ? `${table.schema}.${table.name}` : null,
      cron: s.cron === undefined ? null : typeof s.cron === 'string' ? [s.cron] : s.cron,
      every: s.every ?? null,
      offset: s.offset ?? null,
      time_zone: s.time_zone,
      overlap: s.overlap,
      catchup_window: s.catchup_window,
      jitter: s.jitter,
      paused: s.paused,
      note: s.note ?? null,
    };
    const id = scheduleId(name);
    const digest = viewDigest(view);
    const input: ArchiveAllInput = {
      ...(view.database !== null && { database: view.database }),
      ...(table && { table: `${quoted(table.schema)}.${quoted(table.name)}` }),
    };
    const attributes: SearchAttributePair[] = [
      ...(view.database !== null ? [{ key: ArchiveDatabase, value: view.database }] : []),
      ...(view.table !== null ? [{ key: ArchiveTable, value: view.table }] : []),
    ];
    const memo: ScheduleActionMemo = {
      scheduledBy: id,
      scheduleDigest: digest,
      scheduleConfig: view,
    };
    const marker: ScheduleMarker = { managedBy: MANAGED_BY, taskQueue, name };
    const jitter = parseDuration(view.jitter)!;
    const options: ScheduleOptions = {
      scheduleId: id,
      spec:
        view.cron !== null
          ? { cronExpressions: view.cron, timezone: view.time_zone, jitter }
          : {
              intervals: [
                { every: parseDuration(view.every!)!, offset: parseDuration(view.offset ?? '0s')! },
              ],
              jitter,
            },
      action: {
        type: 'startWorkflow',
        workflowType: 'ArchiveAll',
        taskQueue,
        args: [input],
        workflowId: scheduledWorkflowId(name),
        staticSummary: `Scheduled archive of ${scopeText(view)} (schedule ${name})`,
        staticDetails: staticDetails(id, name, view),
        memo: { ...memo },
        typedSearchAttributes: attributes,
      },
      policies: {
        overlap: OVERLAP[view.overlap],
        catchupWindow: parseDuration(view.catchup_window)!,
      },
      state: { paused: view.paused, ...(view.note !== null && { note: view.note }) },
      memo: { ...marker },
      typedSearchAttributes: attributes,
    };
    return { name, id, view, digest, options };
  });
}

/** The Markdown the Web UI shows on each run the schedule starts. */
function staticDetails(id: string, name: string, view: ScheduleConfigView): string {
  return [
    `Started by the Temporal Schedule \`${id}\`, which \`audit-archiver schedule apply\` keeps in step with \`schedules.${name}\` in the config.`,
    '',
    `- scope: ${scopeText(view)}`,
    `- when: ${whenText(view)}`,
    `- overlap: ${view.overlap}; catch-up window: ${view.catchup_window}; jitter: ${view.jitter}`,
    ...(view.note !== null ? [`- note: ${view.note}`] : []),
  ].join('\n');
}
