import assert from 'node:assert/strict';
import {
  ActivityFailure,
  ApplicationFailure,
  CancelledFailure,
  RetryState,
} from '@temporalio/common';
import { stringify } from 'yaml';
import { parseConfig, type Config } from '../../src/config';
import type { ConfigInput } from '../../src/config/schema';
import { planDeliveries, resolveChannel } from '../../src/notify/channels';
import { eventMessage, type Message } from '../../src/notify/message';
import { runLink } from '../../src/temporal-client/connection';
import { messageIdOf, renderEmail, renderSlack, renderTeams } from '../../src/notify/render';
import type { ArchiveTableOutcome } from '../../src/shared/archive-types';
import { ConfigError, SecretMissingError } from '../../src/shared/errors';
import {
  MAX_ERROR_CHARS,
  runEndEvents,
  type NotificationEvent,
  type RunEndContext,
} from '../../src/shared/notification-types';
import { slackPayloadSchema, teamsMessageSchema } from '../helpers/notification-receivers';

type Channels = NonNullable<NonNullable<ConfigInput['notifications']>['channels']>;

const base = (channels: Channels, notify?: string[]): ConfigInput => ({
  version: '2.0',
  s3: { bucket: 'audit-archive' },
  databases: [
    {
      name: 'app',
      ...(notify && { notify }),
      tables: [{ name: 'audit_log', timestamp_column: 'created_at', primary_key: 'id' }],
    },
    {
      name: 'billing',
      tables: [{ name: 'audit_log', timestamp_column: 'created_at', primary_key: 'id' }],
    },
  ],
  notifications: { channels },
});

const parse = (input: ConfigInput): Config => parseConfig(stringify(input), 'config.yaml', {});
const errorOf = (input: ConfigInput): string => {
  try {
    parse(input);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.message;
  }
  return assert.fail('the config must be refused');
};

const CHANNELS: Channels = {
  mail: {
    type: 'email',
    smtp: { host: 'smtp.example.com', user: 'archiver', password_env: 'SMTP_PASSWORD' },
    from: 'archiver@example.com',
    to: ['ops@example.com'],
  },
  chat: { type: 'slack', min_severity: 'info', webhook_url_env: 'SLACK_URL' },
  cards: { type: 'teams', min_severity: 'error', webhook_url_file: '/run/secrets/teams' },
  drift: { type: 'slack', min_severity: 'info', events: ['schema_drift'], webhook_url_env: 'X' },
};

const RUN: RunEndContext = {
  database: 'app',
  schema: 'public',
  table: 'audit_log',
  workflowId: 'archive/app/public.audit_log',
  runId: 'run-2',
  firstRunId: 'run-1',
  at: '2026-12-03T02:00:00.000Z',
};

const archived = (overrides: Partial<Extract<ArchiveTableOutcome, { outcome: 'archived' }>> = {}) =>
  ({
    outcome: 'archived',
    run: '20261203T020000Z-run1',
    cutoff: '2026-09-04T02:00:00.000Z',
    schemaChanged: false,
    skipped: { nullKey: 0, outOfRange: 0 },
    batches: 3,
    rowsArchived: 25_000,
    rowsDeleted: 24_990,
    rowsChanged: 10,
    bytes: 3_500_000,
    objects: 3,
    ...overrides,
  }) as ArchiveTableOutcome;

describe('notifications', () => {
  describe('configuration', () => {
    it('fills in min_severity warning and sends every database to every channel unless it says', () => {
      const config = parse(base(CHANNELS, ['chat']));
      assert.equal(config.notifications.channels.mail!.min_severity, 'warning');
      assert.equal(config.notifications.channels.mail!.smtp!.port, 587);
      assert.equal(config.notifications.channels.mail!.smtp!.tls, 'starttls');
      assert.deepEqual(planDeliveries(config, { database: 'app', kinds: ['run_failed'] }), [
        { kind: 'run_failed', channel: 'chat' },
      ]);
      assert.deepEqual(
        planDeliveries(config, { database: 'billing', kinds: ['run_failed'] }).map(
          (d) => d.channel,
        ),
        ['mail', 'chat', 'cards'],
      );
    });

    it('routes each event to the channels whose min_severity and events take it', () => {
      const config = parse(base(CHANNELS));
      const plan = planDeliveries(config, {
        database: 'app',
        kinds: ['run_succeeded', 'schema_drift', 'legal_hold', 'run_failed'],
      });
      assert.deepEqual(
        plan.map((d) => `${d.kind} ${d.channel}`),
        [
          'run_succeeded chat',
          'schema_drift mail',
          'schema_drift chat',
          'schema_drift drift',
          'legal_hold mail',
          'legal_hold chat',
          'run_failed mail',
          'run_failed chat',
          'run_failed cards',
        ],
      );
    });

    it('refuses a database that names a channel the config does not have, in one line', () => {
      assert.equal(
        errorOf(base(CHANNELS, ['chat', 'pager'])),
        'config.yaml: databases[0].notify[1]: database "app": channel "pager" is not in notifications.channels (mail, chat, cards, drift)',
      );
    });

    it('says what an email channel lacks, and what a webhook channel must not have', () => {
      assert.equal(
        errorOf(base({ mail: { type: 'email', to: ['ops@example.com'] } })),
        [
          'config.yaml: notifications.channels.mail: smtp is required for an email channel',
          'config.yaml: notifications.channels.mail: from is required for an email channel',
        ].join('\n'),
      );
      assert.equal(
        errorOf(base({ chat: { type: 'slack', webhook_url_env: 'A', webhook_url_file: '/a' } })),
        'config.yaml: notifications.channels.chat: a slack channel needs webhook_url_env or webhook_url_file (not both)',
      );
      assert.equal(
        errorOf(base({ chat: { type: 'teams', webhook_url_env: 'A', to: ['a@b.example'] } })),
        'config.yaml: notifications.channels.chat: to is only for email channels',
      );
      assert.equal(
        errorOf(base({ Ops: { type: 'slack', webhook_url_env: 'A' } })),
        'config.yaml: notifications.channels.Ops: channel name "Ops" must be a lower-case name (letters, digits, - and _), e.g. ops-slack',
      );
      assert.match(
        errorOf(
          base({ chat: { type: 'slack', webhook_url: 'https://hooks.slack.com/x' } as never }),
        ),
        /^config\.yaml: notifications\.channels\.chat: unknown key "webhook_url" \(expected one of: [a-z_, ]*webhook_url_env, webhook_url_file\)$/m,
      );
    });

    it('reads secrets from the variable or file the config names, and names only where it looked', () => {
      const config = parse(base(CHANNELS));
      const mail = resolveChannel(config, 'mail', { SMTP_PASSWORD: 's3cret' });
      assert.ok(mail.type === 'email' && mail.smtp.password === 's3cret');
      assert.throws(
        () => resolveChannel(config, 'chat', {}),
        (err: unknown) =>
          err instanceof SecretMissingError &&
          err.message ===
            'notification channel "chat": environment variable SLACK_URL (webhook_url_env) is not set',
      );
      assert.throws(
        () => resolveChannel(config, 'cards', {}),
        /notification channel "cards": cannot read webhook_url_file \/run\/secrets\/teams \(ENOENT\)/,
      );
    });
  });

  describe('events of a run end', () => {
    it('reports a failure with the innermost error type and message and the step it failed in', () => {
      const cause = ApplicationFailure.create({
        type: 'SchemaDriftError',
        message: 'app: public.audit_log: the schema changed',
        nonRetryable: true,
      });
      const err = new ActivityFailure(
        'Activity task failed',
        'snapshotSchema',
        '7',
        RetryState.NON_RETRYABLE_FAILURE,
        'worker',
        cause,
      );
      const [event, ...rest] = runEndEvents(RUN, { error: err });
      assert.equal(rest.length, 0);
      assert.deepEqual(event, {
        id: 'archive/app/public.audit_log/run-1/run_failed',
        kind: 'run_failed',
        database: 'app',
        schema: 'public',
        table: 'audit_log',
        workflowId: 'archive/app/public.audit_log',
        runId: 'run-2',
        firstRunId: 'run-1',
        at: RUN.at,
        error: {
          type: 'SchemaDriftError',
          message: 'app: public.audit_log: the schema changed',
          step: 'snapshotSchema',
        },
      });
    });

    it('keys events by workflow id, first run id and kind: the same on every retry and replay', () => {
      const later = { ...RUN, runId: 'run-3', at: '2026-12-03T03:00:00.000Z' };
      assert.equal(
        runEndEvents(RUN, { outcome: archived() })[0]!.id,
        runEndEvents(later, { outcome: archived() })[0]!.id,
      );
    });

    it('bounds a long error message', () => {
      const [event] = runEndEvents(RUN, { error: new Error('x'.repeat(10_000)) });
      assert.equal(event!.error!.message.length, MAX_ERROR_CHARS);
      assert.equal(event!.error!.type, 'Error');
    });

    it('reports nothing for a cancelled run, a dry run or a table locked by another run', () => {
      assert.deepEqual(runEndEvents(RUN, { error: new CancelledFailure('cancelled') }), []);
      assert.deepEqual(runEndEvents(RUN, { outcome: { outcome: 'locked', heldBy: 'x' } }), []);
    });

    it('reports a success, and beside it schema drift and the rows legal holds kept', () => {
      const events = runEndEvents(RUN, {
        outcome: archived({
          schemaChanged: true,
          skipped: {
            nullKey: 0,
            outOfRange: 0,
            held: [
              {
                hold: 'config',
                reason: 'case 7',
                days: { first: '2026-08-01', last: '9999-12-31' },
                rows: 40,
                objectsLocked: 2,
              },
              {
                hold: 'h2',
                reason: 'none',
                days: { first: 'a', last: 'b' },
                rows: 0,
                objectsLocked: 0,
              },
            ],
          },
        }),
      });
      assert.deepEqual(
        events.map((e) => e.kind),
        ['run_succeeded', 'schema_drift', 'legal_hold'],
      );
      assert.equal(events[0]!.totals!.rowsArchived, 25_000);
      assert.deepEqual(events[2]!.held, [
        { hold: 'config', reason: 'case 7', first: '2026-08-01', last: '9999-12-31', rows: 40 },
      ]);
    });
  });

  describe('payloads', () => {
    const failed: NotificationEvent = runEndEvents(RUN, {
      error: ApplicationFailure.create({
        type: 'VerificationError',
        message: 'SHA-256 differs: <stored> & expected *bold* ``` end',
      }),
    })[0]!;
    const link = runLink('http://ui.example:8233', 'default', RUN.workflowId, RUN.runId);
    const message: Message = eventMessage(failed, link);

    it('links the run in the Web UI', () => {
      assert.equal(
        link,
        'http://ui.example:8233/namespaces/default/workflows/archive%2Fapp%2Fpublic.audit_log/run-2/history',
      );
      assert.equal(runLink(undefined, 'default', 'w', 'r'), undefined);
    });

    it('renders a Slack payload Slack accepts, naming the table and the error, escaped', () => {
      const payload = renderSlack(message);
      const parsed = slackPayloadSchema.safeParse(payload);
      assert.ok(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues));
      assert.equal(
        payload.text,
        'ERROR Archive run failed: app public.audit_log: VerificationError',
      );
      const text = JSON.stringify(payload.blocks);
      assert.match(text, /SHA-256 differs: &lt;stored&gt; &amp; expected \*bold\* ''' end/);
      assert.match(text, /archive%2Fapp%2Fpublic.audit_log\/run-2\/history/);
    });

    it('keeps a Slack payload within Block Kit limits whatever the message length', () => {
      const long = eventMessage(
        {
          ...failed,
          table: 't'.repeat(300),
          error: { type: 'E', message: '<'.repeat(MAX_ERROR_CHARS) },
        },
        link,
      );
      const parsed = slackPayloadSchema.safeParse(renderSlack(long));
      assert.ok(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues));
    });

    it('renders a Teams message whose Adaptive Card has the required fields and types', () => {
      const payload = renderTeams(message);
      const parsed = teamsMessageSchema.safeParse(payload);
      assert.ok(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues));
      const card = payload.attachments[0]!.content;
      assert.equal(card.version, '1.4');
      assert.deepEqual(card.actions, [
        { type: 'Action.OpenUrl', title: 'Open the run in the Temporal Web UI', url: link },
      ]);
      const facts = card.body.find((e) => e.type === 'FactSet');
      assert.ok(facts?.type === 'FactSet');
      assert.deepEqual(facts.facts.slice(0, 2), [
        { title: 'Database', value: 'app' },
        { title: 'Table', value: 'public.audit_log' },
      ]);
      assert.match(JSON.stringify(card.body), /VerificationError/);
    });

    it('renders an email with a one-line subject and a Message-ID derived from the event and channel', () => {
      const channel = { name: 'mail', from: 'archiver@example.com', subjectPrefix: '[aa]' };
      const email = renderEmail(message, channel);
      assert.equal(email.subject, '[aa] ERROR Archive run failed: app public.audit_log');
      assert.match(email.text, /^Error: VerificationError$/m);
      assert.match(email.text, /^Table: {4}public\.audit_log$/m);
      assert.equal(email.messageId, renderEmail(message, channel).messageId);
      assert.equal(email.messageId, messageIdOf(failed.id, 'mail', 'archiver@example.com'));
      assert.notEqual(email.messageId, messageIdOf(failed.id, 'mail2', 'archiver@example.com'));
      assert.match(email.messageId, /^<aa-[0-9a-f]{40}@example\.com>$/);
      const odd = renderEmail({ ...message, title: 'a\r\nBcc: x@y' }, channel);
      assert.doesNotMatch(odd.subject, /[\r\n]/);
    });

    it('says what changed in a schema, when the worker could read the change record', () => {
      const [, drift] = runEndEvents(RUN, { outcome: archived({ schemaChanged: true }) });
      const told = eventMessage(drift!, undefined, 'added note (text)');
      assert.match(told.summary, /changed since its last snapshot \(added note \(text\)\)\./);
      assert.deepEqual(told.facts.at(-1), ['Change', 'added note (text)']);
      assert.doesNotMatch(eventMessage(drift!).summary, /\(added/);
    });

    it('says what a success did, in counts', () => {
      const [event] = runEndEvents(RUN, { outcome: archived() });
      const text = renderEmail(eventMessage(event!), {
        name: 'm',
        from: 'a@b.example',
        subjectPrefix: '',
      }).text;
      assert.match(
        text,
        /^Archived 25,000 rows older than 2026-09-04T02:00:00.000Z from public\.audit_log in database app: 24,990 deleted, 3 objects, 3\.3 MiB\.$/m,
      );
      assert.match(text, /10 rows changed after they were exported/);
    });
  });
});
