import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config';
import { innermostMessage } from '../../src/shared/failures';
import type { ConfigInput } from '../../src/config/schema';
import { archiveTableWorkflowId, type ArchiveTableOutcome } from '../../src/shared/archive-types';
import type { ArchiveTable } from '../../workflows';
import { testConfigInput, writeConfigFile } from '../helpers/config';
import { createAuditTable, TestDatabase } from '../helpers/database';
import { runMain } from '../helpers/in-process-cli';
import {
  eventually,
  MAILPIT,
  mailsTo,
  mailText,
  slackPayloadSchema,
  teamsMessageSchema,
  WebhookReceiver,
  type SlackPayload,
  type TeamsMessage,
} from '../helpers/notification-receivers';
import { startTestWorker, uniqueTaskQueue, type TestWorker } from '../helpers/worker';

const DAY_MS = 86_400_000;
const daysAgo = (days: number) => new Date(Date.now() - days * DAY_MS).toISOString().slice(0, 10);

/** Every text a Slack payload shows. */
const slackText = (p: SlackPayload) => JSON.stringify(p);
/** Every text a Teams card shows. */
const cardText = (m: TeamsMessage) => JSON.stringify(m.attachments[0]!.content);

// Issue 13, notifications: archive runs on the real stack (PostgreSQL, MinIO, Temporal) with
// a real worker, delivering to Mailpit over SMTP and to local webhook receivers that check
// every payload against Slack's Block Kit limits and the Adaptive Card schema.
describe('Notifications of archive runs (real worker, Mailpit, webhook receivers)', function () {
  this.timeout(240_000);
  const id = randomUUID().slice(0, 8);
  const prefix = `notifications-${randomUUID()}/`;
  const failingMail = `failures-${id}@example.com`;
  const runsMail = `runs-${id}@example.com`;
  let failing: TestDatabase;
  let held: TestDatabase;
  let worker: TestWorker;
  let secrets: string;
  // Teams answers 500 to the first failure message it gets: the channel's activity is retried.
  const slack = new WebhookReceiver(slackPayloadSchema, (_n, at) =>
    at.startsWith('/refused/') ? 404 : 200,
  );
  /** What the refused channel was sent about a database's runs (answered 404 each). */
  const refused = (database: string) =>
    slack.received.filter(
      (r) => r.path === `/refused/${id}` && JSON.stringify(r.body).includes(database),
    );
  const teams = new WebhookReceiver(teamsMessageSchema, (n, at) =>
    at.startsWith('/failures/') && n === 1 ? 500 : 202,
  );
  const holdSince = daysAgo(20);
  const holdUntil = daysAgo(15);

  const secretFile = (name: string, value: string) => {
    const file = path.join(secrets, name);
    writeFileSync(file, `${value}\n`, { mode: 0o600 });
    return file;
  };

  before(async () => {
    secrets = mkdtempSync(path.join(tmpdir(), 'aa-notify-secrets-'));
    await slack.start();
    await teams.start();
    failing = await TestDatabase.create();
    held = await TestDatabase.create();
    await createAuditTable(failing, { rows: 60 });
    await createAuditTable(held, { rows: 120 });
    const input: ConfigInput = testConfigInput({
      database: failing.name,
      prefix,
      taskQueue: uniqueTaskQueue(),
      overrides: (c) => {
        c.databases[0]!.tables[0]!.schema_drift = 'block';
        c.temporal!.web_ui_url = 'http://ui.example.test:8233';
        const second = JSON.parse(JSON.stringify(c.databases[0])) as ConfigInput['databases'][0];
        second.name = held.name;
        second.tables = [
          {
            name: 'audit_log',
            timestamp_column: 'created_at',
            primary_key: 'id',
            legal_hold: { reason: `case ${id}`, since: holdSince, until: holdUntil },
          },
        ];
        second.notify = ['runs-mail', 'runs-slack', 'failures-teams', 'refused'];
        c.databases[0]!.notify = ['failures-mail', 'failures-slack', 'failures-teams', 'refused'];
        c.databases.push(second);
        const smtp = { host: MAILPIT.host, port: MAILPIT.smtpPort, tls: 'none' as const };
        c.notifications = {
          channels: {
            'failures-mail': {
              type: 'email',
              min_severity: 'error',
              smtp,
              from: 'archiver@example.com',
              to: [failingMail],
            },
            'failures-slack': {
              type: 'slack',
              webhook_url_file: secretFile('failures-slack', slack.url(`/failures/${id}`)),
            },
            'failures-teams': {
              type: 'teams',
              events: ['run_failed'],
              webhook_url_file: secretFile('failures-teams', teams.url(`/failures/${id}`)),
            },
            'runs-mail': {
              type: 'email',
              smtp,
              from: 'archiver@example.com',
              to: [runsMail],
            },
            // A webhook that no longer exists: 404, final, never retried.
            refused: {
              type: 'slack',
              webhook_url_file: secretFile('refused', slack.url(`/refused/${id}`)),
            },
            'runs-slack': {
              type: 'slack',
              min_severity: 'info',
              webhook_url_file: secretFile('runs-slack', slack.url(`/runs/${id}`)),
            },
          },
        };
      },
    });
    worker = await startTestWorker(parseConfig(stringify(input), 'notifications.yaml', {}));
  });

  after(async () => {
    await worker?.stop();
    await failing?.drop();
    await held?.drop();
    await slack.stop();
    await teams.stop();
    rmSync(secrets, { recursive: true, force: true });
  });

  const archive = (database: string, table: string): Promise<ArchiveTableOutcome> => {
    const ref = { database, schema: 'public', table };
    return worker.client.workflow.execute<typeof ArchiveTable>('ArchiveTable', {
      taskQueue: worker.taskQueue,
      workflowId: `${archiveTableWorkflowId(ref)}-${randomUUID()}`,
      args: [ref],
    });
  };

  it('reports a failed run by exactly one email, one Slack and one Teams message, each naming the table and the error, though Teams refused the first attempt; a refused channel leaves the run its own error', async () => {
    // A run that succeeds tells these channels nothing (min_severity error and warning,
    // events run_failed); then the table's schema changes under schema_drift block.
    assert.equal((await archive(failing.name, 'audit_log')).outcome, 'archived');
    assert.equal(slack.received.length + teams.received.length, 0);
    assert.equal((await mailsTo(failingMail)).length, 0);
    await failing.query('alter table audit_log add column note text');
    const failure = await archive(failing.name, 'audit_log').then(
      () => assert.fail('the run must fail: its schema changed and schema_drift is block'),
      (err: unknown) => err,
    );
    assert.ok(failure instanceof WorkflowFailedError, String(failure));
    // The run fails with its own error, whatever the notifications met (one was refused).
    assert.match(innermostMessage(failure), /schema_drift is block, so nothing was archived/);
    assert.deepEqual(
      refused(failing.name).map((r) => r.status),
      [404],
      'a refused message is not retried',
    );
    // The run ends after its notifications: everything is delivered by now.
    const mails = await eventually(
      () => mailsTo(failingMail),
      (m) => m.length > 0,
    );
    assert.equal(mails.length, 1, 'exactly one email');
    const mail = mails[0]!;
    assert.match(mail.Subject, /ERROR Archive run failed: \S+ public\.audit_log$/);
    assert.match(mail.MessageID, /^aa-[0-9a-f]{40}@example\.com$/);
    const text = await mailText(mail.ID);
    assert.match(text, /Error: SchemaDriftError \(in snapshotSchema\)/);
    assert.match(
      text,
      /public\.audit_log: the schema changed since the last snapshot \(added note \(text\)\); schema_drift is block/,
    );
    assert.match(
      text,
      /http:\/\/ui\.example\.test:8233\/namespaces\/default\/workflows\/archive%2F/,
    );

    const slackMessages = slack.accepted(`/failures/${id}`);
    assert.deepEqual(
      slack.received.filter((r) => r.path === `/failures/${id}`).map((r) => r.status),
      [200],
      'one Slack request, accepted',
    );
    assert.equal(slackMessages.length, 1);
    assert.match(
      slackMessages[0]!.text,
      /^ERROR Archive run failed: \S+ public\.audit_log: SchemaDriftError$/,
    );
    assert.match(slackText(slackMessages[0]!), /added note \(text\)/);

    const teamsRequests = teams.received.filter((r) => r.path === `/failures/${id}`);
    assert.deepEqual(
      teamsRequests.map((r) => [r.parsed.ok, r.status]),
      [
        [true, 500],
        [true, 202],
      ],
      'Teams: the refused attempt, then its retry',
    );
    assert.deepEqual(
      teamsRequests[0]!.body,
      teamsRequests[1]!.body,
      'the retry sends the same card',
    );
    const card = teams.accepted(`/failures/${id}`);
    assert.equal(card.length, 1);
    assert.match(cardText(card[0]!), /public\.audit_log/);
    assert.match(cardText(card[0]!), /SchemaDriftError/);
    assert.match(cardText(card[0]!), /added note \(text\)/);

    // The retry of the Teams message sent nothing again to the other channels.
    assert.equal((await mailsTo(failingMail)).length, 1);
    assert.equal(slack.accepted(`/failures/${id}`).length, 1);
  });

  it('reports a successful run only where min_severity is info, and rows kept by a legal hold and schema drift at warning; a refused channel leaves the run a success', async () => {
    const first = await archive(held.name, 'audit_log');
    assert.equal(first.outcome, 'archived');
    assert.ok(first.outcome === 'archived' && first.rowsArchived > 0);
    await held.query('alter table audit_log add column note text');
    await held.query(
      `insert into audit_log (created_at, actor, action, note) values (now() - interval '10 days', 'late', 'x', 'n')`,
    );
    const second = await archive(held.name, 'audit_log');
    assert.ok(second.outcome === 'archived' && second.schemaChanged);
    // Both runs succeeded though the refused channel answered 404 to each of their warnings.
    assert.deepEqual(
      refused(held.name).map((r) => r.status),
      [404, 404, 404],
    );

    // runs-slack (info): both successes, both legal-hold skips, the drift.
    const events = slack
      .accepted(`/runs/${id}`)
      .map((p) => /^(\w+) (.*?): /.exec(p.text)?.slice(1, 3).join(' '));
    assert.deepEqual(events.sort(), [
      'INFO Archive run done',
      'INFO Archive run done',
      'WARNING Old rows kept by a legal hold',
      'WARNING Old rows kept by a legal hold',
      'WARNING Table schema changed',
    ]);
    const drift = slack.accepted(`/runs/${id}`).find((p) => p.text.includes('schema changed'))!;
    assert.match(slackText(drift), /changed since its last snapshot \(added note \(text\)\)/);
    const legal = slack.accepted(`/runs/${id}`).find((p) => p.text.includes('legal hold'))!;
    assert.match(
      slackText(legal),
      new RegExp(`${holdSince} to ${holdUntil}, \\d+ rows \\(case ${id}\\)`),
    );
    // runs-mail (warning, the default): no success, the rest.
    const mails = await eventually(
      () => mailsTo(runsMail),
      (m) => m.length >= 3,
    );
    assert.deepEqual(mails.map((m) => m.Subject.replace(/: .*/, '')).sort(), [
      '[audit-archiver] WARNING Old rows kept by a legal hold',
      '[audit-archiver] WARNING Old rows kept by a legal hold',
      '[audit-archiver] WARNING Table schema changed',
    ]);
    // failures-teams takes run_failed only: nothing of these runs.
    assert.equal(teams.received.filter((r) => r.path !== `/failures/${id}`).length, 0);
  });

  describe('audit-archiver notify test', () => {
    const slackEnv = `AA_NOTIFY_SLACK_${id.toUpperCase()}`;
    const teamsEnv = `AA_NOTIFY_TEAMS_${id.toUpperCase()}`;
    const testMail = `notify-test-${id}@example.com`;
    let file: string;

    before(() => {
      file = writeConfigFile({
        ...testConfigInput({ database: 'app', prefix }),
        notifications: {
          channels: {
            mail: {
              type: 'email',
              smtp: { host: MAILPIT.host, port: MAILPIT.smtpPort, tls: 'none' },
              from: 'archiver@example.com',
              to: [testMail],
            },
            chat: { type: 'slack', webhook_url_env: slackEnv },
            cards: { type: 'teams', webhook_url_env: teamsEnv },
            gone: { type: 'slack', webhook_url_file: path.join(tmpdir(), `aa-no-such-${id}`) },
          },
        },
      });
    });

    it('sends one test message to each channel named, says what each answered, and exits 0', async () => {
      const result = await runMain(
        ['notify', 'test', '-c', file, '--channel', 'mail', 'chat', 'cards'],
        { [slackEnv]: slack.url(`/test/${id}`), [teamsEnv]: teams.url(`/test/${id}`) },
      );
      assert.equal(result.code, 0, result.stderr);
      const lines = result.stdout.split('\n').filter(Boolean);
      assert.equal(lines.length, 4, result.stdout);
      assert.match(lines[0]!, /^ok {4}mail \(email\): sent; the receiver answered 250 /);
      assert.equal(lines[1], 'ok    chat (slack): sent; the receiver answered HTTP 200: ok');
      assert.equal(lines[2], 'ok    cards (teams): sent; the receiver answered HTTP 202: ok');
      assert.equal(lines[3], 'sent a test message to 3 of 3 channels');
      const mails = await eventually(
        () => mailsTo(testMail),
        (m) => m.length > 0,
      );
      assert.deepEqual(
        mails.map((m) => m.Subject),
        ['[audit-archiver] INFO Test notification: mail'],
      );
      assert.equal(slack.accepted(`/test/${id}`).length, 1);
      assert.equal(teams.accepted(`/test/${id}`).length, 1);
    });

    it('tries every channel, names the one whose secret is missing without its value, and exits 1', async () => {
      const result = await runMain(['notify', 'test', '-c', file], {
        [slackEnv]: undefined,
        [teamsEnv]: teams.url(`/test-all/${id}`),
      });
      assert.equal(result.code, 1);
      const lines = result.stdout.split('\n').filter(Boolean);
      assert.match(lines[0]!, /^ok {4}mail \(email\): sent/);
      assert.equal(
        lines[1],
        `FAIL  chat (slack): notification channel "chat": environment variable ${slackEnv} (webhook_url_env) is not set`,
      );
      assert.match(lines[2]!, /^ok {4}cards \(teams\): sent/);
      assert.match(
        lines[3]!,
        /^FAIL {2}gone \(slack\): notification channel "gone": cannot read webhook_url_file \S+ \(ENOENT\)$/,
      );
      assert.equal(lines[4], '2 of 4 channels did not take the test message');
      assert.doesNotMatch(result.stdout, /127\.0\.0\.1:\d+\/test-all/, 'no webhook URL printed');
    });

    it('refuses a channel the config does not name, with exit 2', async () => {
      const result = await runMain(['notify', 'test', '-c', file, '--channel', 'pager']);
      assert.equal(result.code, 2);
      assert.equal(
        result.stderr,
        `error: ${file}: notifications.channels: no channel "pager" (configured: mail, chat, cards, gone)\n`,
      );
    });
  });
});
