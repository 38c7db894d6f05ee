import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ArchiverError, ConfigError, TableNotConfiguredError } from '../../shared/errors';
import { parseTableName } from '../../shared/table-ref';
import { isDay } from '../../shared/validate-types';
import {
  commandContext,
  DEFAULT_CONFIG,
  LOG_LEVELS,
  type CommandContext,
  type GlobalOptions,
} from './context';
import { archiveCommand } from './archive-command';
import { auditCommand, type AuditCommandOptions } from './audit-command';
import { AUDIT_ACTIONS } from '../../shared/audit-types';
import { doctorCommand } from './doctor-command';
import { holdCommand, type HoldAction, type HoldCommandOptions } from './hold-command';
import { restoreCommand, type RestoreCommandOptions } from './restore-command';
import { snapshotCommand } from './snapshot-command';
import { notifyTestCommand, type NotifyTestOptions } from './notify-command';
import {
  scheduleApplyCommand,
  scheduleDeleteCommand,
  scheduleListCommand,
  type ScheduleApplyOptions,
  type ScheduleDeleteOptions,
  type ScheduleListOptions,
} from './schedule-command';
import { validateCommand, type ValidateCommandOptions } from './validate-command';
import { runWorker } from '../worker';

/**
 * Exit codes, documented in README.md:
 *   0 success; 1 a check or an operation failed; 2 bad input (usage, config, names).
 */
export const EXIT = { ok: 0, failed: 1, badInput: 2 } as const;

function isBadInput(err: unknown): boolean {
  return err instanceof ConfigError || err instanceof TableNotConfiguredError;
}

/** -d and -t as commander parses them. */
interface TableSelection {
  database?: string;
  table?: string;
}

/** The whole command tree; exported so tests can check the docs against it. */
export function buildProgram(run: (action: () => Promise<number>) => Promise<void>): Command {
  const program = new Command('audit-archiver')
    .description(
      'Moves old audit-table rows out of PostgreSQL into S3-compatible storage through Temporal workflows.',
    )
    .version('0.1.0')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride()
    .addHelpText(
      'after',
      `
Exit codes: 0 success, 1 a check or an operation failed, 2 bad input (usage, configuration, names).
Start here: audit-archiver doctor --config audit-archiver.yaml
Compliance controls (retention bounds by classification, enforced encryption, Object Lock
retention, legal holds, the audit trail, schema drift): docs/compliance.md.
Running it: docs/operations.md; incidents step by step: docs/runbooks.md; an error message
explained: docs/troubleshooting.md.
Docs: README.md and docs/ (configuration reference: docs/configuration.md).`,
    );

  const withCommon = (cmd: Command) =>
    cmd
      .option('-c, --config <file>', 'configuration file (YAML)', DEFAULT_CONFIG)
      .option('-v, --verbose', 'debug logs, and stack traces on errors')
      .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS))
      .exitOverride();

  /** -d and -t: the tables a command works on (all the configured ones by default). */
  const selecting = (cmd: Command) =>
    cmd
      .option('-d, --database <name>', 'only this database')
      .option(
        '-t, --table <name>',
        'only this table (schema.table or table; quote names that hold a dot: "a.b".c)',
      );

  const ctxOf = (opts: GlobalOptions) =>
    commandContext(opts, process.env, Boolean(process.stdout.isTTY));

  /** A command with only the common options and -d/-t. */
  const tableCommand = (
    name: string,
    description: string,
    command: (ctx: CommandContext, opts: TableSelection) => Promise<number>,
  ) =>
    withCommon(selecting(program.command(name).description(description))).action(
      (opts: GlobalOptions & TableSelection) => run(() => command(ctxOf(opts), opts)),
    );

  tableCommand(
    'doctor',
    'check every configured database, table, the bucket (and the encryption and Object Lock the compliance controls need) and the Temporal namespace; exit 1 if any check fails',
    doctorCommand,
  );

  withCommon(
    program
      .command('worker')
      .description(
        'run a Temporal worker for the configured task queue, with /metrics and /healthz; stops gracefully on SIGINT/SIGTERM',
      ),
  ).action((opts: GlobalOptions) =>
    run(async () => {
      const ctx = ctxOf(opts);
      await runWorker({
        config: ctx.config,
        env: ctx.env,
        logger: ctx.logger(),
        logLevel: ctx.logLevel,
      });
      return EXIT.ok;
    }),
  );

  withCommon(
    selecting(
      program
        .command('archive')
        .description(
          'archive every configured table (or the chosen ones) through the ArchiveAll workflow; needs a running worker',
        ),
    )
      .option('-n, --dry-run', 'report per table what would be archived; writes nothing anywhere')
      .option('--no-wait', 'start the run, print its workflow id and return')
      .addHelpText(
        'after',
        `
Exit codes: 0 every table archived (or found locked by another run), 1 a table failed, 2 bad input.
Follow a run in the Web UI, or: temporal workflow query --workflow-id <id> --name progress
Find a table's runs there by ArchiveTable = 'schema.table', failed ones by ArchiveOutcome = 'failed'
(docs/web-ui.md).`,
      ),
  ).action(
    (
      opts: GlobalOptions & { database?: string; table?: string; dryRun?: boolean; wait: boolean },
    ) => run(() => archiveCommand(ctxOf(opts), opts)),
  );

  withCommon(
    program
      .command('restore')
      .description(
        "list a table's archived objects, or restore them into the table (or another one) from the bucket alone; needs a running worker",
      )
      .option('-d, --database <name>', 'database of the archived table')
      .option(
        '-t, --table <name>',
        'the archived table (schema.table or table; quote names that hold a dot: "a.b".c)',
      )
      .option('--s3-key <key...>', 'restore these data objects')
      .option('--restore-all', 'restore every object of the table (in the date range)')
      .option('--start-date <YYYY-MM-DD>', 'first UTC day to restore')
      .option('--end-date <YYYY-MM-DD>', 'last UTC day to restore')
      .option(
        '--conflict-strategy <strategy>',
        'rows whose key exists: skip, overwrite or fail',
        'fail',
      )
      .option('--ignore-watermark', 'restore objects already restored into the target')
      .option(
        '--target-table <name>',
        'restore into this table (schema.table or table; quote names that hold a dot: "a.b".c) of the same database',
        parseTargetTable,
      )
      .option('--drop-missing-columns', 'leave out archived columns the target table does not have')
      .option(
        '--all-lines',
        'restore every archived line, also versions of rows that were never deleted (for a side-by-side investigation)',
      )
      .option('-n, --dry-run', 'print the plan; write nothing')
      .option('--list-holds', 'list the holds earlier restores placed on the table')
      .option('--release-holds', 'let the archive take the days earlier restores held again')
      .option('--hold <id...>', 'with --release-holds: only these holds')
      .addHelpText(
        'after',
        `
Without --s3-key or --restore-all it lists the table's archive. By default a restore writes
exactly the row versions the archive deleted (as the deletion receipts list them); rows
that changed after they were archived, or whose batch was never deleted, stay as they are
in the table unless --all-lines is given. Each object is restored in its own transaction;
the plan (objects, rows, column mapping) is printed before any row is written. Restoring
into the archived table itself takes the table's lock and holds the restored days from
the archive until --release-holds.
Exit codes: 0 done, 1 the restore was refused or failed, 2 bad input.`,
      ),
  ).action((opts: GlobalOptions & RestoreCommandOptions) =>
    run(() => restoreCommand(ctxOf(opts), opts)),
  );

  const hold = program
    .command('hold')
    .description(
      'place, list and release legal holds on a table without editing the config (needs a running worker)',
    )
    .addHelpText(
      'after',
      `
A legal hold keeps the rows of its days in the table whatever their age: each archive run
reports them as held, and objects already archived from those days get an S3 Object Lock
legal hold where the bucket has Object Lock (nobody can delete them while it stands).
Holds are written to the bucket with who placed them, why and when; releasing one writes a
release record beside it and never deletes it. A table's config can hold rows too
(legal_hold in docs/configuration.md); that hold ends only when the config says so.
See docs/compliance.md.`,
    );
  /** A subcommand of `parent`: the common options, its own, and what it runs. */
  const subcommand = <O>(
    parent: Command,
    name: string,
    description: string,
    options: (cmd: Command) => Command,
    action: (ctx: CommandContext, opts: O) => Promise<number>,
  ) =>
    withCommon(options(parent.command(name).description(description))).action(
      (opts: GlobalOptions & O) => run(() => action(ctxOf(opts), opts)),
    );
  /** -d, -t and --json of the hold subcommands, then their own options. */
  const holdOptions =
    (own: (cmd: Command) => Command = (cmd) => cmd) =>
    (cmd: Command) =>
      own(
        cmd
          .option('-d, --database <name>', 'database of the table')
          .option(
            '-t, --table <name>',
            'the table (schema.table or table; quote names that hold a dot: "a.b".c)',
          )
          .option('--json', 'print only the result, as JSON, on stdout'),
      );
  const holdAction = (action: HoldAction) => (ctx: CommandContext, opts: HoldCommandOptions) =>
    holdCommand(ctx, action, opts);
  subcommand(
    hold,
    'place',
    'hold the rows of a range of days in the table, and lock their archive',
    holdOptions((cmd) =>
      cmd
        .option('--reason <text>', 'why the rows are held (a case, a request, an audit)')
        .option('--since <YYYY-MM-DD>', 'first UTC day held')
        .option('--until <YYYY-MM-DD>', 'last UTC day held (default: every day from --since on)')
        .option('--by <name>', 'who places the hold (default: user@host)'),
    ),
    holdAction('place'),
  );
  subcommand(
    hold,
    'list',
    "list the table's holds in force (legal ones and restores')",
    holdOptions(),
    holdAction('list'),
  );
  subcommand(
    hold,
    'release',
    'end holds: the archive takes their days again',
    holdOptions((cmd) =>
      cmd
        .option('--hold <id...>', 'the holds to release (default: every hold of the table)')
        .option('--reason <text>', 'why the hold ends')
        .option('--by <name>', 'who releases it (default: user@host)'),
    ),
    holdAction('release'),
  );

  const audit = program
    .command('audit')
    .description(
      "verify or show the tamper-evident audit trail of the archiver's own actions (needs a running worker)",
    )
    .addHelpText(
      'after',
      `
Every archived batch, delete, restore, validate, hold, release, legal-hold skip and schema
change writes a record to the bucket (<prefix>_audit-trail/): who (the worker, the workflow
run), what (table, object keys, counts, checksums) and when. Records are write-once, numbered
in order and chained by hash, under Object Lock retention when compliance.audit_trail sets
one. See docs/compliance.md.`,
    );
  subcommand(
    audit,
    'verify',
    'walk the chain; exit 1 naming the first broken, missing or reordered record',
    (cmd) => cmd.option('--json', 'print only the result, as JSON, on stdout'),
    (ctx, opts: AuditCommandOptions) => auditCommand(ctx, true, opts),
  );
  subcommand(
    audit,
    'show',
    'list audit records, oldest first',
    (cmd) =>
      cmd
        .option('-d, --database <name>', 'only records of this database')
        .option('-t, --table <name>', 'only records of this table (schema.table or table)')
        .option('--action <action...>', `only these actions (${AUDIT_ACTIONS.join(', ')})`)
        .option('--start-date <YYYY-MM-DD>', 'first UTC day', parseDay)
        .option('--end-date <YYYY-MM-DD>', 'last UTC day', parseDay)
        .option('--limit <n>', 'show at most the newest n records (default 500)', parseCount)
        .option('--json', 'print only the result, as JSON, on stdout'),
    (ctx, opts: AuditCommandOptions) => auditCommand(ctx, false, opts),
  );

  const schedule = program
    .command('schedule')
    .description(
      'create, update, list and delete the Temporal Schedules of the config (its schedules: section)',
    )
    .addHelpText(
      'after',
      `
Each entry of the config's schedules: section is one Temporal Schedule, id
audit-archiver/<name>, that starts an archive run (the ArchiveAll workflow, as
\`audit-archiver archive\` does) of its scope on the config's task queue, on a cron or
interval spec. The Temporal server runs them; a worker must poll the task queue. They show
in the Web UI (Schedules) and in \`temporal schedule list\`, where they can be paused,
unpaused and triggered. Schedules the archiver did not create are never changed. See
docs/schedules.md.`,
    );
  subcommand(
    schedule,
    'apply',
    'create or update one schedule per configured entry; says per schedule what changed (or "unchanged")',
    (cmd) =>
      cmd
        .option(
          '--prune',
          "also delete the archiver's schedules that the config no longer lists (without it they are only reported as stale)",
        )
        .option('-n, --dry-run', 'say what would change; change nothing')
        .addHelpText(
          'after',
          `
Applying twice changes nothing the second time. A pause or unpause made in the Web UI or
with the CLI is kept until the config's paused value changes. Exit codes: 0 done, 1 a
schedule could not be applied (e.g. its id is taken by a schedule the archiver did not
create), 2 bad input.`,
        ),
    (ctx, opts: ScheduleApplyOptions) => scheduleApplyCommand(ctx, opts),
  );
  subcommand(
    schedule,
    'list',
    "list this config's schedules: scope, spec, paused, next runs, the last run and its outcome, and whether each is in step with the config",
    (cmd) => cmd.option('--json', 'print only the result, as JSON, on stdout'),
    (ctx, opts: ScheduleListOptions) => scheduleListCommand(ctx, opts),
  );
  withCommon(
    schedule
      .command('delete')
      .description(
        "delete the archiver's schedules by name (or audit-archiver/<name> id), or --all of this config's task queue; runs they started go on",
      )
      .argument('[names...]', 'schedule names, as in the config')
      .option('--all', "every schedule the archiver created for this config's task queue")
      .addHelpText(
        'after',
        `
A schedule the archiver did not create is left alone (exit 1). A name that is no schedule
exits 2. Deleting a schedule that is still in the config: the next apply creates it again.`,
      ),
  ).action((names: string[], opts: GlobalOptions & ScheduleDeleteOptions, cmd: Command) => {
    if (names.length > 0 === (opts.all === true))
      cmd.error('error: name the schedules to delete, or give --all (not both)');
    return run(() => scheduleDeleteCommand(ctxOf(opts), names, opts));
  });

  const notify = program
    .command('notify')
    .description('check the notification channels of the config (its notifications: section)')
    .addHelpText(
      'after',
      `
Archive runs send notifications as they end: failures (error), schema drift and old rows
kept by legal holds (warning), and successes (info, opt-in), by email, Slack or Microsoft
Teams, to each channel whose min_severity they reach, for the databases whose notify: lists
it. The worker sends them; secrets (SMTP password, webhook URLs) come from the variables or
files the config names. See docs/notifications.md.`,
    );
  subcommand(
    notify,
    'test',
    'send one test message to each configured channel (or the ones named), from this machine with its environment; exit 1 if any channel did not take it',
    (cmd) => cmd.option('--channel <name...>', 'only these channels'),
    (ctx, opts: NotifyTestOptions) => notifyTestCommand(ctx, opts),
  );

  tableCommand(
    'snapshot-schema',
    "store each selected table's schema snapshot in the bucket, through the SnapshotSchema workflow (needs a running worker)",
    snapshotCommand,
  );

  withCommon(
    selecting(
      program
        .command('validate')
        .description(
          'check the archives in the bucket against their manifests, and a sample of archived rows against the source tables, through the Validate workflow (needs a running worker)',
        ),
    )
      .option('--start-date <YYYY-MM-DD>', 'first UTC day partition to check', parseDay)
      .option('--end-date <YYYY-MM-DD>', 'last UTC day partition to check', parseDay)
      .option(
        '--sample-size <rows>',
        'archived rows per table looked up in the source table (default 20)',
        parseCount,
      )
      .option('--json', 'print only the result, as JSON, on stdout')
      .addHelpText(
        'after',
        `
Exit codes: 0 every check passed, 1 a problem was found (each printed as "key: problem"), 2 bad input.`,
      ),
  ).action((opts: GlobalOptions & ValidateCommandOptions, cmd: Command) => {
    // Checked before anything starts: a reversed range would validate nothing and pass.
    if (opts.startDate && opts.endDate && opts.startDate > opts.endDate) {
      cmd.error(`error: --start-date ${opts.startDate} is after --end-date ${opts.endDate}`);
    }
    return run(() => validateCommand(ctxOf(opts), opts));
  });

  return program;
}

function parseDay(value: string): string {
  if (!isDay(value)) throw new InvalidArgumentError('expected a day written YYYY-MM-DD.');
  return value;
}

function parseTargetTable(value: string): string {
  if (!parseTableName(value))
    throw new InvalidArgumentError(
      'expected table or schema.table, with double quotes around a name that holds a dot ("a.b".c).',
    );
  return value;
}

function parseCount(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number, 0 or more.');
  return Number(value);
}

/**
 * The error's message, followed by its innermost cause when it has one: a workflow that
 * failed says why (the table does not exist, ...), not only that it failed.
 */
function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  let root: Error = err;
  while (root.cause instanceof Error) root = root.cause;
  return root === err || err.message.includes(root.message)
    ? err.message
    : `${err.message}: ${root.message}`;
}

/** Runs the CLI and resolves to the process exit code; never throws. */
export async function main(argv: readonly string[]): Promise<number> {
  // The AWS SDK warns on every run that its 2027 releases need Node 22; README says so once.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  let exitCode: number = EXIT.ok;
  let verbose = argv.includes('--verbose') || argv.includes('-v');
  const run = async (action: () => Promise<number>) => {
    try {
      exitCode = await action();
    } catch (err) {
      exitCode = isBadInput(err) ? EXIT.badInput : EXIT.failed;
      const message = describeError(err);
      process.stderr.write(
        message
          .split('\n')
          .map((line) => `error: ${line}\n`)
          .join(''),
      );
      if (verbose && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
      else if (!(err instanceof ArchiverError))
        process.stderr.write('(run with --verbose for details)\n');
    }
  };
  try {
    await buildProgram(run).parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      const done = ['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(
        err.code,
      );
      return done ? EXIT.ok : EXIT.badInput;
    }
    verbose = true;
    throw err;
  }
  return exitCode;
}

if (require.main === module) {
  // Output piped into a reader that stops early (`| head`) ends the command quietly.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? EXIT.ok);
    throw err;
  });
  main(process.argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(
        `internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exitCode = EXIT.failed;
    },
  );
}
