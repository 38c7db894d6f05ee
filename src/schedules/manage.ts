import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  WorkflowNotFoundError,
  type Client,
  type ScheduleDescription,
  type ScheduleUpdateOptions,
} from '@temporalio/client';
import type { Config } from '../config';
import type { ArchiveRunResult } from '../shared/run-types';
import { createSearchAttributeCommand } from '../temporal-client/search-attributes';
import {
  desiredSchedules,
  MANAGED_BY,
  SCHEDULE_ID_PREFIX,
  scheduleId,
  scopeText,
  whenText,
  type DesiredSchedule,
  type ScheduleActionMemo,
  type ScheduleConfigView,
  type ScheduleMarker,
} from './desired';

/**
 * What `schedule apply` did (or, in a dry run, would do) to one schedule. Apply goes on
 * after a schedule fails, so every configured schedule gets its line.
 */
export type ApplyOutcome =
  | { status: 'created'; id: string; name: string; view: ScheduleConfigView }
  | { status: 'updated'; id: string; name: string; changes: string[]; notes: string[] }
  | { status: 'unchanged'; id: string; name: string; notes: string[] }
  /** Ours (same task queue) but no longer in the config: deleted only with --prune. */
  | { status: 'stale'; id: string; name: string; pruned: boolean }
  /** Carries the prefix but was not created by the archiver for this config: left alone. */
  | { status: 'left alone'; id: string; reason: string }
  | { status: 'failed'; id: string; name: string; reason: string };

export interface ApplyOptions {
  /** Delete our schedules that the config no longer lists. */
  prune?: boolean;
  /** Only say what would change. */
  dryRun?: boolean;
}

/** What a schedule's memo says about who made it; undefined when it is not the archiver. */
function markerOf(memo: Record<string, unknown> | undefined): ScheduleMarker | undefined {
  return memo?.managedBy === MANAGED_BY && typeof memo.taskQueue === 'string'
    ? (memo as unknown as ScheduleMarker)
    : undefined;
}

async function describeOrUndefined(
  client: Client,
  id: string,
): Promise<ScheduleDescription | undefined> {
  try {
    return await client.schedule.getHandle(id).describe();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return undefined;
    throw err;
  }
}

/**
 * Why a schedule is not this config's to change, or undefined when it is: it must carry the
 * archiver's marker for this config's task queue.
 */
function notOurs(d: ScheduleDescription, taskQueue: string): string | undefined {
  const marker = markerOf(d.memo);
  if (!marker) return 'it was not created by audit-archiver (its memo has no managedBy marker)';
  if (marker.taskQueue !== taskQueue) {
    return `it was created by audit-archiver for task queue ${marker.taskQueue}, not this config's ${taskQueue}`;
  }
  return undefined;
}

const show = (value: unknown): string =>
  value === null || value === undefined
    ? 'none'
    : Array.isArray(value)
      ? value.map((v) => JSON.stringify(v)).join(', ')
      : JSON.stringify(value);

/** `cron: "30 2 * * *" → "0 3 * * *"` for each setting of the config entry that changed. */
function viewChanges(before: ScheduleConfigView, after: ScheduleConfigView): string[] {
  return (Object.keys(after) as (keyof ScheduleConfigView)[])
    .filter((key) => JSON.stringify(before[key]) !== JSON.stringify(after[key]))
    .map((key) => `${key}: ${show(before[key])} → ${show(after[key])}`);
}

/**
 * Differences between the schedule as Temporal has it and as the config wants it, other than
 * the pause: someone edited it in the Web UI or with the CLI. (A cron spec comes back from
 * the server compiled to calendars, so it is compared by count; the action memo's digest
 * covers the text.)
 */
function drift(d: ScheduleDescription, want: DesiredSchedule): string[] {
  const out: string[] = [];
  const wanted = want.options;
  const action = wanted.action;
  const check = (what: string, live: unknown, desired: unknown) => {
    if (JSON.stringify(live) !== JSON.stringify(desired))
      out.push(`${what}: ${show(live)} → ${show(desired)}`);
  };
  check('workflow type', d.action.workflowType, action.workflowType);
  check('task queue', d.action.taskQueue, action.taskQueue);
  check('workflow id', d.action.workflowId, action.workflowId);
  check('input', JSON.stringify(d.action.args as unknown[]), JSON.stringify(action.args));
  // Long texts: only said to differ.
  if (d.action.staticSummary !== action.staticSummary) out.push('summary: edited');
  if (d.action.staticDetails !== action.staticDetails) out.push('details: edited');
  check('overlap', d.policies.overlap, wanted.policies?.overlap);
  check('catch-up window (ms)', d.policies.catchupWindow, wanted.policies?.catchupWindow);
  check('jitter (ms)', d.spec.jitter ?? 0, wanted.spec.jitter);
  const cron = wanted.spec.cronExpressions ?? [];
  check('calendar entries', d.spec.calendars?.length ?? 0, cron.length);
  if (cron.length > 0) check('time zone', d.spec.timezone || 'UTC', wanted.spec.timezone);
  check(
    'intervals (ms)',
    (d.spec.intervals ?? []).map((i) => [i.every, i.offset]),
    (wanted.spec.intervals ?? []).map((i): unknown[] => [i.every, i.offset ?? 0]),
  );
  return out;
}

function actionMemoOf(d: ScheduleDescription): ScheduleActionMemo | undefined {
  const memo = d.action.memo as Partial<ScheduleActionMemo> | undefined;
  return memo?.scheduleConfig && typeof memo.scheduleDigest === 'string'
    ? (memo as ScheduleActionMemo)
    : undefined;
}

/**
 * Brings one configured schedule in step with the config. The pause is the config's when
 * the schedule is created and whenever `paused` changes in the config; a pause or unpause
 * made since in the Web UI or CLI is kept (an operator stopping runs during an incident must
 * not be undone by a routine apply) and reported.
 */
async function applyOne(
  client: Client,
  want: DesiredSchedule,
  options: ApplyOptions,
): Promise<ApplyOutcome> {
  const { id, name } = want;
  const taskQueue = want.options.action.taskQueue;
  const live = await describeOrUndefined(client, id);
  if (!live) {
    if (!options.dryRun) {
      try {
        await client.schedule.create(want.options);
      } catch (err) {
        if (err instanceof ScheduleAlreadyRunning) {
          return {
            status: 'failed',
            id,
            name,
            reason: 'created by someone else meanwhile; run apply again',
          };
        }
        throw err;
      }
    }
    return { status: 'created', id, name, view: want.view };
  }
  const reason = notOurs(live, taskQueue);
  if (reason) {
    return {
      status: 'failed',
      id,
      name,
      reason: `the id is taken and ${reason}; left alone (rename the schedule in the config${markerOf(live.memo) ? `, or delete that one with \`audit-archiver schedule delete ${name}\` if this config replaces it` : ''})`,
    };
  }
  const before = actionMemoOf(live);
  const changes = before
    ? viewChanges(before.scheduleConfig, want.view)
    : ['the action memo the archiver keeps: missing → set'];
  // When the config changed, the update rewrites the whole schedule and its changes say
  // enough; otherwise any difference was made outside the config.
  const edited =
    changes.length > 0
      ? []
      : drift(live, want).map((c) => `${c} (it was changed outside the config)`);
  const pausedByConfig = before === undefined || before.scheduleConfig.paused !== want.view.paused;
  const paused = pausedByConfig ? want.view.paused : live.state.paused;
  const notes: string[] = [];
  let note = want.view.note ?? undefined;
  if (!pausedByConfig && live.state.paused !== want.view.paused) {
    // Kept as the operator left it, with their note.
    note = live.state.note;
    notes.push(
      `${live.state.paused ? 'paused' : 'unpaused'} outside the config${live.state.note ? ` (note: ${live.state.note})` : ''}; kept so: ${live.state.paused ? 'unpause it in the Web UI or with `temporal schedule toggle --unpause`' : 'pause it again'}, or change paused in the config`,
    );
  } else if ((live.state.note ?? '') !== (note ?? '')) {
    edited.push(`note: ${show(live.state.note)} → ${show(note)}`);
  }
  if (changes.length === 0 && edited.length === 0) {
    return { status: 'unchanged', id, name, notes };
  }
  if (!options.dryRun) {
    const { spec, action, policies, typedSearchAttributes } = want.options;
    const update: ScheduleUpdateOptions = {
      spec,
      action,
      policies,
      state: { paused, ...(note !== undefined && { note }) },
      typedSearchAttributes,
    };
    await client.schedule.getHandle(id).update(() => update);
  }
  // A change to the config's paused value is in `changes`; say the pause itself too.
  return { status: 'updated', id, name, changes: [...changes, ...edited], notes };
}

/** The schedules whose id carries the archiver's prefix, as the (eventually consistent) list shows them. */
async function listedWithPrefix(client: Client): Promise<string[]> {
  const ids: string[] = [];
  for await (const s of client.schedule.list()) {
    if (s.scheduleId.startsWith(SCHEDULE_ID_PREFIX)) ids.push(s.scheduleId);
  }
  return ids.sort();
}

/**
 * Creates or updates one Temporal Schedule per `schedules` entry of the config, reports the
 * archiver's schedules that the config no longer lists (deleting them with `prune`), and
 * leaves every other schedule alone. Running it twice changes nothing the second time.
 */
export async function applySchedules(
  client: Client,
  config: Config,
  options: ApplyOptions = {},
): Promise<ApplyOutcome[]> {
  const taskQueue = config.temporal.task_queue;
  const wanted = desiredSchedules(config);
  const outcomes: ApplyOutcome[] = [];
  for (const want of wanted) {
    try {
      outcomes.push(await applyOne(client, want, options));
    } catch (err) {
      outcomes.push({
        status: 'failed',
        id: want.id,
        name: want.name,
        reason: reasonOf(err, config.temporal.namespace),
      });
    }
  }
  const configured = new Set(wanted.map((w) => w.id));
  for (const id of await listedWithPrefix(client)) {
    if (configured.has(id)) continue;
    // Described, not taken from the list: the list lags behind creates and deletes.
    const live = await describeOrUndefined(client, id);
    if (!live) continue;
    const marker = markerOf(live.memo);
    if (!marker) {
      outcomes.push({ status: 'left alone', id, reason: notOurs(live, taskQueue)! });
      continue;
    }
    if (marker.taskQueue !== taskQueue) continue; // another deployment's: not ours to report
    const prune = options.prune === true;
    if (prune && !options.dryRun) await deleteQuietly(client, id);
    outcomes.push({
      status: 'stale',
      id,
      name: id.slice(SCHEDULE_ID_PREFIX.length),
      pruned: prune,
    });
  }
  return outcomes;
}

async function deleteQuietly(client: Client, id: string): Promise<void> {
  try {
    await client.schedule.getHandle(id).delete();
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
  }
}

/** One of the archiver's schedules (or a configured one not applied yet), for `schedule list`. */
export interface ScheduleListing {
  id: string;
  name: string;
  /**
   * in step: as the config says; differs: the config changed since the last apply (or the
   * schedule was edited elsewhere); not applied: in the config, not in Temporal; stale: in
   * Temporal, no longer in the config; id taken: in the config, but its id belongs to a
   * schedule that is not this config's (apply fails on it).
   */
  state: 'in step' | 'differs' | 'not applied' | 'stale' | 'id taken';
  scope: string;
  when: string;
  paused: boolean;
  note?: string;
  nextRuns: Date[];
  lastRun?: { workflowId: string; startedAt: Date; outcome: string };
}

/** The archiver's schedules of this config's task queue, and the configured ones not applied yet. */
export async function listSchedules(client: Client, config: Config): Promise<ScheduleListing[]> {
  const taskQueue = config.temporal.task_queue;
  const wanted = new Map(desiredSchedules(config).map((w) => [w.id, w]));
  const ids = new Set([...wanted.keys(), ...(await listedWithPrefix(client))]);
  const out: ScheduleListing[] = [];
  for (const id of [...ids].sort()) {
    const want = wanted.get(id);
    const live = await describeOrUndefined(client, id);
    if (!live) {
      if (want) {
        out.push({
          id,
          name: want.name,
          state: 'not applied',
          scope: scopeText(want.view),
          when: whenText(want.view),
          paused: want.view.paused,
          nextRuns: [],
        });
      }
      continue;
    }
    if (notOurs(live, taskQueue)) {
      if (want) {
        out.push({
          id,
          name: want.name,
          state: 'id taken',
          scope: scopeText(want.view),
          when: whenText(want.view),
          paused: live.state.paused,
          nextRuns: [],
        });
      }
      continue;
    }
    const memo = actionMemoOf(live);
    const view = memo?.scheduleConfig ?? want?.view;
    const inStep =
      want !== undefined && memo?.scheduleDigest === want.digest && drift(live, want).length === 0;
    out.push({
      id,
      name: id.slice(SCHEDULE_ID_PREFIX.length),
      state: want === undefined ? 'stale' : inStep ? 'in step' : 'differs',
      scope: view ? scopeText(view) : 'unknown',
      when: view ? whenText(view) : 'unknown',
      paused: live.state.paused,
      ...(live.state.note && { note: live.state.note }),
      nextRuns: live.info.nextActionTimes.slice(0, 3),
      ...(await lastRunOf(client, live)),
    });
  }
  return out;
}

/** The newest run the schedule started and how it ended (or that it is still running). */
async function lastRunOf(
  client: Client,
  d: ScheduleDescription,
): Promise<Pick<ScheduleListing, 'lastRun'>> {
  const last = d.info.recentActions.at(-1);
  if (!last) return {};
  const { workflowId, firstExecutionRunId } = last.action.workflow;
  let outcome: string;
  try {
    const handle = client.workflow.getHandle(workflowId, undefined, { firstExecutionRunId });
    const status = (await handle.describe()).status.name;
    outcome = status.toLowerCase().replace(/_/g, ' ');
    if (status === 'COMPLETED') {
      const result = (await handle.result()) as ArchiveRunResult;
      outcome = `completed: ${result.tables.length} table${result.tables.length === 1 ? '' : 's'}, ${result.failed} failed`;
    }
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    outcome = 'no longer in the history (retention)';
  }
  return { lastRun: { workflowId, startedAt: last.takenAt, outcome } };
}

export type DeleteOutcome =
  | { status: 'deleted'; id: string; note?: string }
  | { status: 'not found'; id: string }
  | { status: 'left alone'; id: string; reason: string };

/**
 * Deletes the named schedules (a name from the config or a full `audit-archiver/...` id), or
 * with `all` every schedule of this config's task queue. Only schedules the archiver
 * created are deleted; others are reported and left alone. Runs they started go on.
 */
export async function deleteSchedules(
  client: Client,
  config: Config,
  target: { names: string[] } | { all: true },
): Promise<DeleteOutcome[]> {
  const taskQueue = config.temporal.task_queue;
  const ids =
    'all' in target
      ? [
          ...new Set([
            ...desiredSchedules(config).map((w) => w.id),
            ...(await listedWithPrefix(client)),
          ]),
        ].sort()
      : target.names.map((n) => (n.startsWith(SCHEDULE_ID_PREFIX) ? n : scheduleId(n)));
  const outcomes: DeleteOutcome[] = [];
  for (const id of ids) {
    const live = await describeOrUndefined(client, id);
    if (!live) {
      if (!('all' in target)) outcomes.push({ status: 'not found', id });
      continue;
    }
    const marker = markerOf(live.memo);
    if (!marker) {
      outcomes.push({ status: 'left alone', id, reason: notOurs(live, taskQueue)! });
      continue;
    }
    // --all is this config's schedules; a name given on purpose may be another queue's.
    if (marker.taskQueue !== taskQueue && 'all' in target) continue;
    await deleteQuietly(client, id);
    outcomes.push({
      status: 'deleted',
      id,
      ...(marker.taskQueue !== taskQueue && { note: `it was task queue ${marker.taskQueue}'s` }),
    });
  }
  return outcomes;
}

/** One line of an error from the server, with what to do when that is known. */
function reasonOf(err: unknown, namespace: string): string {
  const message = err instanceof Error ? err.message : String(err);
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : '';
  const text = cause && !message.includes(cause) ? `${message}: ${cause}` : message;
  const attribute = /no mapping defined for search attribute (\w+)/.exec(text)?.[1];
  return attribute
    ? `${text} (a worker registers it when it starts; or: ${createSearchAttributeCommand(attribute, namespace)})`
    : text;
}
