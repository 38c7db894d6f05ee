import { randomUUID } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { resolveChannel } from '../../notify/channels';
import { deliver } from '../../notify/deliver';
import { testMessage } from '../../notify/message';
import { ConfigError } from '../../shared/errors';
import type { CommandContext } from './context';

export interface NotifyTestOptions {
  channel?: string[];
}

/**
 * `notify test`: one test message to each configured channel (or the ones named), sent from
 * this process with this environment's secrets; one line per channel, exit 1 when any
 * channel did not take its message.
 */
export async function notifyTestCommand(
  ctx: CommandContext,
  options: NotifyTestOptions,
): Promise<number> {
  const configured = Object.keys(ctx.config.notifications.channels);
  if (configured.length === 0)
    throw new ConfigError(
      `${ctx.configPath}: notifications.channels: no channel is configured (docs/notifications.md)`,
    );
  const unknown = (options.channel ?? []).filter((name) => !configured.includes(name));
  if (unknown.length > 0)
    throw new ConfigError(
      `${ctx.configPath}: notifications.channels: no channel ${unknown.map((n) => `"${n}"`).join(', ')} (configured: ${configured.join(', ')})`,
    );
  const names = options.channel ? [...new Set(options.channel)] : configured;
  const from = `${safeUser()}@${hostname()}`;
  let failed = 0;
  for (const name of names) {
    const type = ctx.config.notifications.channels[name]!.type;
    try {
      const channel = resolveChannel(ctx.config, name, ctx.env);
      const message = testMessage(name, new Date().toISOString(), `test/${randomUUID()}`, from);
      const answer = await deliver(channel, message);
      ctx.out(`ok    ${name} (${type}): sent; the receiver answered ${answer}`);
    } catch (err) {
      failed++;
      const text = err instanceof Error ? err.message : String(err);
      // Delivery errors already start with the channel's name and type.
      ctx.out(`FAIL  ${text.startsWith(`${name} (`) ? text : `${name} (${type}): ${text}`}`);
    }
  }
  ctx.out(
    failed === 0
      ? `sent a test message to ${names.length} of ${names.length} channels`
      : `${failed} of ${names.length} channels did not take the test message`,
  );
  return failed === 0 ? 0 : 1;
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'someone';
  }
}
