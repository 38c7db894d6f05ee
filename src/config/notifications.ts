import { z } from 'zod';
import { envVarName } from './fields';
import { NOTIFICATION_EVENTS, SEVERITIES } from '../shared/notification-types';

/**
 * The `notifications:` section and each database's `notify:` list (docs/notifications.md):
 * named channels (email over SMTP, Slack and Microsoft Teams webhooks), each with a
 * minimum severity, and the databases whose runs they hear of. Secrets (the SMTP password,
 * the webhook URLs, which are credentials) come from environment variables or files the
 * config names, never from this file.
 */

const envName = envVarName('SLACK_WEBHOOK_URL');

const channelName = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9_-]{0,62}$/,
    'must be a lower-case name (letters, digits, - and _), e.g. ops-slack',
  );

const emailAddress = z.email({ error: 'must be an e-mail address, e.g. ops@example.com' });

const smtpSchema = z
  .strictObject({
    host: z.string().min(1).describe('SMTP server host name or address.'),
    port: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .default(587)
      .describe('SMTP server port (587 submission with STARTTLS, 465 implicit TLS, 25 relay).'),
    tls: z
      .enum(['starttls', 'implicit', 'none'])
      .default('starttls')
      .describe(
        'starttls (upgrade the connection and refuse a server that cannot), implicit (TLS from the first byte, usually port 465) or none (plain text, for a relay on a trusted network or a local test server).',
      ),
    user: z
      .string()
      .min(1)
      .optional()
      .describe('User to log in as; without it, no login (an open relay on a trusted network).'),
    password_env: envName.optional().describe('Environment variable that holds the SMTP password.'),
    password_file: z
      .string()
      .min(1)
      .optional()
      .describe('File whose content (trailing newline removed) is the SMTP password.'),
  })
  .describe('The SMTP server an email channel sends through.');

const channelSchema = z
  .strictObject({
    type: z
      .enum(['email', 'slack', 'teams'])
      .describe(
        'email (SMTP: smtp, from, to), slack (a Slack incoming webhook) or teams (a Microsoft Teams workflow or incoming webhook, Adaptive Card messages).',
      ),
    min_severity: z
      .enum(SEVERITIES)
      .default('warning')
      .describe(
        'Least severity sent to this channel: info (also successful runs), warning (schema drift, rows kept by a legal hold) or error (failed runs only).',
      ),
    events: z
      .array(z.enum(NOTIFICATION_EVENTS))
      .min(1)
      .optional()
      .describe(
        'Only these events (run_failed, run_succeeded, schema_drift, legal_hold), still at or above min_severity. Default: every event.',
      ),
    smtp: smtpSchema.optional(),
    from: emailAddress.optional().describe('email: the sender address.'),
    to: z.array(emailAddress).min(1).optional().describe('email: the recipients.'),
    subject_prefix: z
      .string()
      .default('[audit-archiver]')
      .describe('email: put before every subject line.'),
    webhook_url_env: envName
      .optional()
      .describe(
        'slack, teams: environment variable that holds the webhook URL (a webhook URL is a credential: it never goes in this file).',
      ),
    webhook_url_file: z
      .string()
      .min(1)
      .optional()
      .describe('slack, teams: file whose content (trailing newline removed) is the webhook URL.'),
  })
  .superRefine((channel, ctx) => {
    const problem = (key: string, message: string) =>
      ctx.addIssue({ code: 'custom', path: [], message: `${key} ${message}` });
    const email = channel.type === 'email';
    if (email) {
      for (const key of ['smtp', 'from', 'to'] as const)
        if (channel[key] === undefined) problem(key, `is required for an email channel`);
      for (const key of ['webhook_url_env', 'webhook_url_file'] as const)
        if (channel[key] !== undefined) problem(key, `is only for slack and teams channels`);
      const smtp = channel.smtp;
      if (smtp?.password_env !== undefined && smtp.password_file !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['smtp'],
          message: 'set password_env or password_file, not both',
        });
      if (smtp && smtp.user === undefined && (smtp.password_env ?? smtp.password_file))
        ctx.addIssue({
          code: 'custom',
          path: ['smtp'],
          message: 'a password needs a user to log in as',
        });
    } else {
      for (const key of ['smtp', 'from', 'to'] as const)
        if (channel[key] !== undefined) problem(key, `is only for email channels`);
      const set = [channel.webhook_url_env, channel.webhook_url_file].filter(
        (v) => v !== undefined,
      ).length;
      if (set !== 1)
        ctx.addIssue({
          code: 'custom',
          path: [],
          message: `a ${channel.type} channel needs webhook_url_env or webhook_url_file (${set === 0 ? 'neither is set' : 'not both'})`,
        });
    }
  });

export const notificationsSchema = z
  .strictObject({
    channels: z
      .record(z.string(), channelSchema)
      .default({})
      .superRefine((channels, ctx) => {
        // Checked here rather than as the record's key schema, to say what a name must be.
        for (const name of Object.keys(channels)) {
          const checked = channelName.safeParse(name);
          if (!checked.success)
            ctx.addIssue({
              code: 'custom',
              path: [name],
              message: `channel name "${name}" ${checked.error.issues[0]!.message}`,
            });
        }
      })
      .describe(
        'Notification channels by name. A database sends to every channel unless its `notify` lists some.',
      ),
  })
  .describe(
    'Messages about archive runs: failures, schema drift, rows kept by legal holds, and (opt-in, min_severity info) successes (docs/notifications.md).',
  );

/** `databases[].notify`: the channels a database's runs are reported to. */
export const databaseNotify = z
  .array(channelName)
  .optional()
  .describe(
    'Names of notifications.channels that hear of the runs of this database; [] for none. Default: every channel.',
  );

export type NotificationsConfig = z.output<typeof notificationsSchema>;
export type ChannelConfig = NotificationsConfig['channels'][string];
export type SmtpConfig = NonNullable<ChannelConfig['smtp']>;

/** A config refinement: every channel a database names exists. */
export function checkNotifyChannels(
  config: {
    notifications: NotificationsConfig;
    databases: readonly { name: string; notify?: readonly string[] | undefined }[];
  },
  ctx: z.RefinementCtx,
): void {
  const known = Object.keys(config.notifications.channels);
  config.databases.forEach((db, i) =>
    db.notify?.forEach((name, j) => {
      if (!known.includes(name))
        ctx.addIssue({
          code: 'custom',
          path: ['databases', i, 'notify', j],
          message: `database "${db.name}": channel "${name}" is not in notifications.channels (${known.join(', ') || 'none'})`,
        });
    }),
  );
}
