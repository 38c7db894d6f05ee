import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config';
import { cronProblem, formatDuration, parseDuration } from '../../src/config/schedules';
import type { ConfigInput } from '../../src/config/schema';
import { ConfigError } from '../../src/shared/errors';
import { desiredSchedules } from '../../src/schedules/desired';
import { testConfigInput } from '../helpers/config';

/** A config of two databases (app: public.audit_log and billing.audit_log; crm: events) and `schedules`. */
function withSchedules(schedules: unknown): string {
  const input: ConfigInput = testConfigInput({
    database: 'app',
    prefix: 'p/',
    tables: [{ name: 'audit_log' }, { name: 'audit_log', schema: 'billing' }, { name: 'a.b' }],
  });
  input.databases.push({
    ...input.databases[0]!,
    name: 'crm',
    tables: [{ name: 'events', timestamp_column: 'at', primary_key: 'id' }],
  });
  (input as { schedules?: unknown }).schedules = schedules;
  return stringify(input);
}

const parse = (schedules: unknown) => parseConfig(withSchedules(schedules), 'aa.yaml', {});

/** The one error line parsing gives. */
function errorOf(schedules: unknown): string {
  try {
    parse(schedules);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.message;
  }
  assert.fail('the config was accepted');
}

describe('schedules: section of the config', () => {
  it('fills in the defaults: overlap skip, catch-up window 1h, no jitter, UTC, not paused', () => {
    const config = parse({ nightly: { cron: '30 2 * * *' } });
    assert.deepEqual(config.schedules, {
      nightly: {
        cron: '30 2 * * *',
        time_zone: 'UTC',
        overlap: 'skip',
        catchup_window: '1h',
        jitter: '0s',
        paused: false,
      },
    });
    assert.deepEqual(parse(undefined).schedules, {});
  });

  const bad: [string, unknown, string][] = [
    [
      'neither cron nor every',
      { s1: {} },
      'aa.yaml: schedules.s1: set cron or every (one of the two) to say when it runs',
    ],
    [
      'both cron and every',
      { s1: { cron: '@daily', every: '1h' } },
      'aa.yaml: schedules.s1: set cron or every (one of the two) to say when it runs',
    ],
    [
      'a cron of four fields',
      { s1: { cron: '30 2 * *' } },
      'aa.yaml: schedules.s1.cron: is not a cron expression: "30 2 * *" has 4 fields; a cron expression has 5: minute hour day-of-month month day-of-week',
    ],
    [
      'an hour out of range in the second cron of a list',
      { s1: { cron: ['@daily', '0 24 * * *'] } },
      'aa.yaml: schedules.s1.cron[1]: is not a cron expression: "0 24 * * *": hour "24" is out of range (0-23)',
    ],
    [
      'an unknown day name',
      { s1: { cron: '0 3 * * MOM' } },
      'aa.yaml: schedules.s1.cron: is not a cron expression: "0 3 * * MOM": day of week "MOM" is out of range (0-7 or SUN-SAT)',
    ],
    [
      'an unknown shorthand',
      { s1: { cron: '@fortnightly' } },
      'aa.yaml: schedules.s1.cron: is not a cron expression: "@fortnightly" is not one of @yearly, @monthly, @weekly, @daily, @hourly (use every: for intervals)',
    ],
    [
      'a time zone inside the cron',
      { s1: { cron: 'CRON_TZ=Europe/Berlin 0 3 * * *' } },
      'aa.yaml: schedules.s1.cron: is not a cron expression: sets its own time zone: use time_zone instead',
    ],
    [
      'an empty cron list',
      { s1: { cron: [] } },
      'aa.yaml: schedules.s1.cron: too small: expected array to have >=1 items',
    ],
    [
      'every without a unit',
      { s1: { every: '6' } },
      'aa.yaml: schedules.s1.every: must be a duration such as 30s, 15m, 6h, 1d or 1h30m, got "6"',
    ],
    [
      'every below a minute',
      { s1: { every: '30s' } },
      'aa.yaml: schedules.s1.every: must be at least 1m, got 30s',
    ],
    [
      'an offset not less than every',
      { s1: { every: '1h', offset: '1h' } },
      'aa.yaml: schedules.s1.offset: must be less than every (1h), got 1h',
    ],
    [
      'an offset with cron',
      { s1: { cron: '@daily', offset: '1h' } },
      'aa.yaml: schedules.s1.offset: is only used with every',
    ],
    [
      'a time zone with every',
      { s1: { every: '1d', time_zone: 'Europe/Berlin' } },
      'aa.yaml: schedules.s1.time_zone: is only used with cron (every counts from the Unix epoch in UTC; use offset)',
    ],
    [
      'a time zone that does not exist',
      { s1: { cron: '@daily', time_zone: 'Mars/Olympus_Mons' } },
      'aa.yaml: schedules.s1.time_zone: is not an IANA time zone name (e.g. UTC, Europe/Berlin)',
    ],
    [
      'an overlap policy that does not exist',
      { s1: { cron: '@daily', overlap: 'sometimes' } },
      'aa.yaml: schedules.s1.overlap: must be one of "skip", "buffer_one", "buffer_all", "cancel_other", "terminate_other", "allow_all", got "sometimes"',
    ],
    [
      'a catch-up window below 10s',
      { s1: { cron: '@daily', catchup_window: '5s' } },
      'aa.yaml: schedules.s1.catchup_window: must be at least 10s, got 5s',
    ],
    [
      'a jitter of milliseconds',
      { s1: { cron: '@daily', jitter: '1500ms' } },
      'aa.yaml: schedules.s1.jitter: must be a whole number of seconds',
    ],
    [
      'paused as text',
      { s1: { cron: '@daily', paused: 'yes' } },
      'aa.yaml: schedules.s1.paused: expected boolean, got "yes"',
    ],
    [
      'an unknown key',
      { s1: { cron: '@daily', timezone: 'UTC' } },
      'aa.yaml: schedules.s1: unknown key "timezone" (did you mean "time_zone"?)',
    ],
    [
      'a name with a space',
      { 'night run': { cron: '@daily' } },
      'aa.yaml: schedules.night run: the name must be 1 to 100 letters, digits, dots, hyphens or underscores, starting with a letter or digit',
    ],
    [
      'a list instead of a mapping of names',
      [{ cron: '@daily' }],
      'aa.yaml: schedules: expected record, got a list',
    ],
    [
      'a database that is not configured',
      { s1: { every: '1d', database: 'nope' } },
      'aa.yaml: schedules.s1.database: database "nope" is not in the config (configured: app, crm)',
    ],
    [
      'a table without its database',
      { s1: { every: '1d', table: 'audit_log' } },
      'aa.yaml: schedules.s1.table: needs database: name the database the table belongs to',
    ],
    [
      'a table the database does not have',
      { s1: { every: '1d', database: 'crm', table: 'audit_log' } },
      'aa.yaml: schedules.s1.table: table "audit_log" is not configured in database "crm"',
    ],
    [
      'a bare table name that two schemas have',
      { s1: { every: '1d', database: 'app', table: 'audit_log' } },
      'aa.yaml: schedules.s1.table: names 2 tables of database "app" (public.audit_log, billing.audit_log); write schema.table',
    ],
  ];
  for (const [name, schedules, message] of bad) {
    it(`answers ${name} with one line naming the schedule and the field`, () => {
      assert.equal(errorOf(schedules), message);
    });
  }

  it('reads durations and cron expressions as the Temporal server does', () => {
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('1d'), 86_400_000);
    assert.equal(parseDuration('6'), undefined);
    assert.equal(parseDuration('1.5h'), undefined);
    assert.equal(formatDuration(5_400_000), '1h30m');
    assert.equal(formatDuration(0), '0s');
    for (const ok of [
      '30 2 * * *',
      '*/15 * * * *',
      '0 9-17 * * MON-FRI',
      '0 0 1 JAN,JUL *',
      '0 3 * * 7',
      '@hourly',
    ])
      assert.equal(cronProblem(ok), undefined, ok);
    assert.match(cronProblem('0 0 0 * *')!, /day of month "0" is out of range \(1-31\)/);
    assert.match(cronProblem('*/0 * * * *')!, /a step must be 1 or more/);
    assert.match(cronProblem('0 0 * * * 2027')!, /has 6 fields/);
  });
});

describe('schedules compiled for Temporal', () => {
  it('starts ArchiveAll with the scope as input, on the config task queue, with a readable workflow id and the scope as search attributes', () => {
    const config = parse({
      all: { cron: ['30 2 * * *', '@weekly'], time_zone: 'Europe/Berlin', note: 'nightly' },
      crm: { database: 'crm', every: '6h', offset: '15m', jitter: '5m', overlap: 'buffer_one' },
      billing: { database: 'app', table: 'billing.audit_log', every: '1d', paused: true },
      dotted: { database: 'app', table: 'a.b', every: '1d' },
    });
    const [all, crm, billing, dotted] = desiredSchedules(config);
    assert.equal(all!.id, 'audit-archiver/all');
    assert.deepEqual(all!.options.spec, {
      cronExpressions: ['30 2 * * *', '@weekly'],
      timezone: 'Europe/Berlin',
      jitter: 0,
    });
    assert.deepEqual(all!.options.action.args, [{}]);
    assert.equal(all!.options.action.workflowType, 'ArchiveAll');
    assert.equal(all!.options.action.taskQueue, config.temporal.task_queue);
    assert.equal(all!.options.action.workflowId, 'archive-run/scheduled/all');
    assert.equal(
      all!.options.action.staticSummary,
      'Scheduled archive of all tables (schedule all)',
    );
    assert.deepEqual(all!.options.state, { paused: false, note: 'nightly' });
    assert.deepEqual(all!.options.typedSearchAttributes, []);
    assert.deepEqual(all!.options.memo, {
      managedBy: 'audit-archiver',
      taskQueue: config.temporal.task_queue,
      name: 'all',
    });

    assert.deepEqual(crm!.options.spec, {
      intervals: [{ every: 21_600_000, offset: 900_000 }],
      jitter: 300_000,
    });
    assert.deepEqual(crm!.options.action.args, [{ database: 'crm' }]);
    assert.deepEqual(crm!.options.policies, { overlap: 'BUFFER_ONE', catchupWindow: 3_600_000 });
    assert.deepEqual(
      (crm!.options.typedSearchAttributes as { key: { name: string }; value: unknown }[]).map(
        (p) => [p.key.name, p.value],
      ),
      [['ArchiveDatabase', 'crm']],
    );

    assert.deepEqual(billing!.options.action.args, [
      { database: 'app', table: 'billing.audit_log' },
    ]);
    assert.deepEqual(
      (billing!.options.typedSearchAttributes as { key: { name: string }; value: unknown }[]).map(
        (p) => [p.key.name, p.value],
      ),
      [
        ['ArchiveDatabase', 'app'],
        ['ArchiveTable', 'billing.audit_log'],
      ],
    );
    assert.equal(billing!.options.state?.paused, true);
    // A table name that holds a dot travels quoted, so the worker cannot read it as schema.table.
    assert.deepEqual(dotted!.options.action.args, [{ database: 'app', table: 'public."a.b"' }]);
  });

  it('gives equal configs equal digests, whatever the key order, and a changed one another', () => {
    const a = desiredSchedules(parse({ s: { every: '1d', jitter: '1m', overlap: 'skip' } }))[0]!;
    const b = desiredSchedules(parse({ s: { overlap: 'skip', jitter: '1m', every: '1d' } }))[0]!;
    const c = desiredSchedules(parse({ s: { every: '1d', jitter: '2m' } }))[0]!;
    assert.equal(a.digest, b.digest);
    assert.notEqual(a.digest, c.digest);
  });
});
