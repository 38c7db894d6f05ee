import { z } from 'zod';
import { TableNotConfiguredError } from '../shared/errors';
import type { Config } from './schema';
import { selectTables } from './tables';

/**
 * The `schedules:` section: Temporal Schedules that `audit-archiver schedule apply` creates
 * and keeps in step with this file (docs/schedules.md). Each one starts the ArchiveAll
 * workflow for its scope (every table, one database, or one table) on a cron or interval
 * spec. The Temporal server runs them; the config only describes them.
 */

const DURATION_UNITS_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(?:\d+(?:ms|s|m|h|d))+$/;

/** `6h`, `1h30m`, `90s`, `1d` in milliseconds; undefined when it is not such a duration. */
export function parseDuration(text: string): number | undefined {
  if (!DURATION.test(text)) return undefined;
  let ms = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+)(ms|s|m|h|d)/g)) {
    ms += Number(amount) * DURATION_UNITS_MS[unit as keyof typeof DURATION_UNITS_MS];
  }
  return ms;
}

/** A duration as the config writes it, in whole seconds (Temporal rounds schedules to seconds). */
const duration = (minMs: number) =>
  z.string().superRefine((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `must be a duration such as 30s, 15m, 6h, 1d or 1h30m, got ${JSON.stringify(text)}`,
      });
    } else if (ms % 1000 !== 0) {
      ctx.addIssue({ code: 'custom', message: 'must be a whole number of seconds' });
    } else if (ms < minMs) {
      ctx.addIssue({
        code: 'custom',
        message: `must be at least ${formatDuration(minMs)}, got ${text}`,
      });
    }
  });

/** Milliseconds as the shortest duration text: 21600000 → `6h`, 5400000 → `1h30m`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
    ['ms', 1],
  ] as const) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return out;
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];
const CRON_FIELDS: { name: string; min: number; max: number; names?: string[]; base?: number }[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS, base: 1 },
  { name: 'day of week', min: 0, max: 7, names: DAYS, base: 0 },
];
export const CRON_SHORTHANDS = ['@yearly', '@monthly', '@weekly', '@daily', '@hourly'];

/**
 * What is wrong with a cron expression, or undefined when it is one the Temporal server
 * reads the same way: five fields (minute hour day-of-month month day-of-week) of `*`,
 * numbers, names (JAN, MON), ranges, lists and steps, or a shorthand such as `@daily`.
 * Checked here so that a typo is a config error naming the schedule, not a server error.
 */
export function cronProblem(expression: string): string | undefined {
  const text = expression.trim();
  if (/^(CRON_TZ|TZ)=/.test(text)) return 'sets its own time zone: use time_zone instead';
  if (text.startsWith('@')) {
    return CRON_SHORTHANDS.includes(text)
      ? undefined
      : `"${text}" is not one of ${CRON_SHORTHANDS.join(', ')} (use every: for intervals)`;
  }
  const fields = text.split(/\s+/);
  if (fields.length !== 5) {
    return `"${text}" has ${fields.length} fields; a cron expression has 5: minute hour day-of-month month day-of-week`;
  }
  for (const [i, field] of fields.entries()) {
    const spec = CRON_FIELDS[i]!;
    const value = (v: string): number | undefined => {
      if (/^\d+$/.test(v)) return Number(v);
      const at = spec.names?.indexOf(v.toUpperCase()) ?? -1;
      return at >= 0 ? at + spec.base! : undefined;
    };
    for (const item of field.split(',')) {
      const m = /^(\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:\/(\d+))?$/.exec(item);
      if (!m) return `"${text}": ${spec.name} field "${field}" is not a cron field`;
      if (m[2] !== undefined && Number(m[2]) < 1) return `"${text}": a step must be 1 or more`;
      if (m[1] === '*') continue;
      for (const part of m[1]!.split('-')) {
        const n = value(part);
        if (n === undefined || n < spec.min || n > spec.max) {
          return `"${text}": ${spec.name} "${part}" is out of range (${spec.min}-${spec.max}${spec.names ? ` or ${spec.names[0]}-${spec.names.at(-1)}` : ''})`;
        }
      }
    }
  }
  return undefined;
}

function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/** The overlap policies of a Temporal Schedule, as the config writes them. */
export const OVERLAP_POLICIES = [
  'skip',
  'buffer_one',
  'buffer_all',
  'cancel_other',
  'terminate_other',
  'allow_all',
] as const;

// A schedule's name becomes part of its Temporal id (`audit-archiver/<name>`) and of the
// workflow ids it starts, so it keeps to characters that read well in both.
const SCHEDULE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

const cronExpression = z.string().superRefine((text, ctx) => {
  const problem = cronProblem(text);
  if (problem) ctx.addIssue({ code: 'custom', message: `is not a cron expression: ${problem}` });
});

export const scheduleSchema = z
  .strictObject({
    database: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Archive only this database (a `databases[].name`). Default: every configured database.',
      ),
    table: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Archive only this table of `database` (`schema.table` or `table`; quote a name that holds a dot: `"a.b".c`). Needs `database`.',
      ),
    cron: z
      .union([cronExpression, z.array(cronExpression).min(1)], {
        error: 'must be a cron expression or a list of them',
      })
      .optional()
      .describe(
        'When to run: one cron expression or a list (minute hour day-of-month month day-of-week, e.g. `30 2 * * *`; or @daily, @hourly, @weekly, @monthly, @yearly), read in `time_zone`. Set `cron` or `every`.',
      ),
    every: duration(60_000)
      .optional()
      .describe(
        'When to run: at this interval (e.g. `6h`, `1d`, `1h30m`), counted from the Unix epoch (so `6h` runs at 00:00, 06:00, ... UTC), shifted by `offset`. Set `cron` or `every`.',
      ),
    offset: duration(0)
      .optional()
      .describe(
        'With `every`: shifts each run by this much (e.g. `every: 1d`, `offset: 2h30m` runs daily at 02:30 UTC). Less than `every`.',
      ),
    time_zone: z
      .string()
      .default('UTC')
      .refine(isTimeZone, 'is not an IANA time zone name (e.g. UTC, Europe/Berlin)')
      .describe(
        'IANA time zone in which `cron` is read (e.g. Europe/Berlin). Clock-time rules of that zone apply: a 02:30 run is skipped on the night that has no 02:30.',
      ),
    overlap: z
      .enum(OVERLAP_POLICIES)
      .default('skip')
      .describe(
        'What a due run does while the previous run of this schedule is still going: skip (do not start; the default), buffer_one (start once the running one ends, at most one waiting), buffer_all (start each in turn), cancel_other (cancel the running one, then start), terminate_other (terminate the running one at once) or allow_all (start anyway; tables that are already being archived are reported locked).',
      ),
    catchup_window: duration(10_000)
      .default('1h')
      .describe(
        'After the Temporal server was down or unreachable, a run missed by at most this much is still started (once, under `overlap`); older ones are dropped. At least 10s.',
      ),
    jitter: duration(0)
      .default('0s')
      .describe(
        'Start each run up to this much later, at random, so that many schedules due at the same time do not all start at once.',
      ),
    paused: z
      .boolean()
      .default(false)
      .describe(
        'Created (or set by apply when this value changes) as paused: it takes no scheduled runs until unpaused; a trigger still runs it. A pause or unpause made in the Web UI or CLI is kept until this value changes.',
      ),
    note: z
      .string()
      .max(1000)
      .optional()
      .describe(
        'A note shown with the schedule in the Web UI and in `temporal schedule describe` (e.g. why it is paused).',
      ),
  })
  .superRefine((s, ctx) => {
    if ((s.cron === undefined) === (s.every === undefined)) {
      ctx.addIssue({
        code: 'custom',
        message: 'set cron or every (one of the two) to say when it runs',
      });
    }
    if (s.offset !== undefined) {
      if (s.every === undefined) {
        ctx.addIssue({ code: 'custom', path: ['offset'], message: 'is only used with every' });
      } else {
        const every = parseDuration(s.every);
        const offset = parseDuration(s.offset);
        if (every !== undefined && offset !== undefined && offset >= every) {
          ctx.addIssue({
            code: 'custom',
            path: ['offset'],
            message: `must be less than every (${s.every}), got ${s.offset}`,
          });
        }
      }
    }
    if (s.every !== undefined && s.time_zone !== 'UTC') {
      ctx.addIssue({
        code: 'custom',
        path: ['time_zone'],
        message: 'is only used with cron (every counts from the Unix epoch in UTC; use offset)',
      });
    }
    if (s.table !== undefined && s.database === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['table'],
        message: 'needs database: name the database the table belongs to',
      });
    }
  });

export const schedulesSchema = z
  .record(z.string(), scheduleSchema)
  .superRefine((schedules, ctx) => {
    for (const name of Object.keys(schedules)) {
      if (!SCHEDULE_NAME.test(name)) {
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message:
            'the name must be 1 to 100 letters, digits, dots, hyphens or underscores, starting with a letter or digit',
        });
      }
    }
  })
  .default({})
  .describe(
    'Temporal Schedules by name, each starting an archive run of its scope on a cron or interval spec. `audit-archiver schedule apply` creates and updates them as `audit-archiver/<name>` (docs/schedules.md).',
  );

export type ScheduleConfig = z.output<typeof scheduleSchema>;

/**
 * The config-wide checks of the schedules: each one's database and table must be configured
 * (and the table must name exactly one), so a schedule never starts a run that fails on a
 * name. Called from the config schema's superRefine.
 */
export function checkScheduleScopes(
  config: { schedules: Record<string, ScheduleConfig> },
  ctx: z.RefinementCtx,
): void {
  for (const [name, s] of Object.entries(config.schedules)) {
    if (s.database === undefined) continue;
    try {
      // Called on the parsed config, whose type is defined in terms of this section.
      const tables = selectTables(config as Config, { database: s.database, table: s.table });
      if (s.table !== undefined && tables.length > 1) {
        ctx.addIssue({
          code: 'custom',
          path: ['schedules', name, 'table'],
          message: `names ${tables.length} tables of database "${s.database}" (${tables.map((t) => `${t.schema}.${t.name}`).join(', ')}); write schema.table`,
        });
      }
    } catch (err) {
      if (!(err instanceof TableNotConfiguredError)) throw err;
      ctx.addIssue({
        code: 'custom',
        path: ['schedules', name, 'table' in err.context ? 'table' : 'database'],
        message: err.message,
      });
    }
  }
}
