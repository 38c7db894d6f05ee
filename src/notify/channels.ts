import { readFileSync } from 'node:fs';
import type { Config, Env } from '../config';
import type { ChannelConfig } from '../config/notifications';
import { ConfigError, SecretMissingError } from '../shared/errors';
import {
  atLeast,
  SEVERITY_OF,
  type PlanNotificationsInput,
  type PlannedDelivery,
  type Severity,
} from '../shared/notification-types';

/** A channel with its secrets read: what a message is sent through. Never logged. */
export type Channel =
  | {
      name: string;
      type: 'email';
      smtp: {
        host: string;
        port: number;
        tls: 'starttls' | 'implicit' | 'none';
        user?: string | undefined;
        password?: string | undefined;
      };
      from: string;
      to: string[];
      subjectPrefix: string;
    }
  | { name: string; type: 'slack' | 'teams'; webhookUrl: string };

/** The channels that hear of a database's runs: its `notify` list, or every channel. */
export function channelsOf(config: Config, database: string): string[] {
  const db = config.databases.find((d) => d.name === database);
  return db?.notify ?? Object.keys(config.notifications.channels);
}

/** Whether a channel takes an event of this kind, by its min_severity and events. */
export function channelTakes(
  channel: ChannelConfig,
  kind: PlannedDelivery['kind'],
  severity: Severity = SEVERITY_OF[kind],
): boolean {
  return (
    atLeast(severity, channel.min_severity) &&
    (channel.events === undefined || channel.events.includes(kind))
  );
}

/** Which channel hears of which event of a database's run: one delivery per pair. */
export function planDeliveries(config: Config, input: PlanNotificationsInput): PlannedDelivery[] {
  const deliveries: PlannedDelivery[] = [];
  for (const kind of input.kinds) {
    for (const name of channelsOf(config, input.database)) {
      const channel = config.notifications.channels[name];
      if (channel && channelTakes(channel, kind)) deliveries.push({ kind, channel: name });
    }
  }
  return deliveries;
}

/**
 * The named channel with its secrets, read from the environment variable or file the
 * config names. Only where a secret was looked for is ever said, never its value.
 */
export function resolveChannel(config: Config, name: string, env: Env): Channel {
  const channel = config.notifications.channels[name];
  if (!channel) {
    const known = Object.keys(config.notifications.channels);
    throw new ConfigError(
      `notification channel "${name}" is not in notifications.channels (${known.join(', ') || 'none'})`,
    );
  }
  if (channel.type === 'email') {
    const smtp = channel.smtp!;
    return {
      name,
      type: 'email',
      smtp: {
        host: smtp.host,
        port: smtp.port,
        tls: smtp.tls,
        user: smtp.user,
        password: secret(name, 'smtp.password', smtp.password_env, smtp.password_file, env),
      },
      from: channel.from!,
      to: channel.to!,
      subjectPrefix: channel.subject_prefix,
    };
  }
  const url = secret(name, 'webhook_url', channel.webhook_url_env, channel.webhook_url_file, env);
  if (url === undefined || url.trim() === '')
    throw new SecretMissingError(`notification channel "${name}": the webhook URL is empty`, {
      channel: name,
    });
  return { name, type: channel.type, webhookUrl: url.trim() };
}

function secret(
  channel: string,
  what: string,
  fromEnv: string | undefined,
  fromFile: string | undefined,
  env: Env,
): string | undefined {
  if (fromEnv !== undefined) {
    const value = env[fromEnv];
    if (value === undefined)
      throw new SecretMissingError(
        `notification channel "${channel}": environment variable ${fromEnv} (${what}_env) is not set`,
        { channel },
      );
    return value;
  }
  if (fromFile !== undefined) {
    try {
      return readFileSync(fromFile, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new SecretMissingError(
        `notification channel "${channel}": cannot read ${what}_file ${fromFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        { channel },
      );
    }
  }
  return undefined;
}
