import nodemailer from 'nodemailer';
import type { Channel } from './channels';
import type { Message } from './message';
import { renderEmail, renderSlack, renderTeams } from './render';

/** How long one delivery may take: connecting, the server's answer, the whole exchange. */
const CONNECT_TIMEOUT_MS = 10_000;
const DELIVERY_TIMEOUT_MS = 20_000;

/**
 * A message a channel did not take. `permanent`: the receiver refused it for a reason no
 * retry can fix (a webhook that no longer exists, a payload it rejects, a login or a
 * recipient the mail server refuses); otherwise a fault that may pass (no answer, 5xx, 429,
 * a mail server's 4xx). Messages name the channel and the receiver's answer, never the
 * webhook URL or a password.
 */
export class DeliveryError extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
    this.name = 'DeliveryError';
  }
}

/** Sends the message through the channel; resolves to the receiver's answer. */
export function deliver(channel: Channel, message: Message, signal?: AbortSignal): Promise<string> {
  switch (channel.type) {
    case 'email':
      return sendEmail(channel, message, signal);
    case 'slack':
      return postWebhook(channel, renderSlack(message), signal);
    case 'teams':
      return postWebhook(channel, renderTeams(message), signal);
  }
}

async function postWebhook(
  channel: Extract<Channel, { type: 'slack' | 'teams' }>,
  payload: unknown,
  signal?: AbortSignal,
): Promise<string> {
  const where = `${channel.name} (${channel.type})`;
  let url: URL;
  try {
    url = new URL(channel.webhookUrl);
  } catch {
    // The value is a secret: say what is wrong with it, never what it is.
    throw new DeliveryError(`${where}: the webhook URL is not a URL`, true);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new DeliveryError(`${where}: the webhook URL is not an http(s) URL`, true);
  const timeout = AbortSignal.timeout(DELIVERY_TIMEOUT_MS);
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(payload),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const reason = timeout.aborted
      ? `no answer within ${DELIVERY_TIMEOUT_MS / 1000} s`
      : (cause?.code ?? cause?.message ?? (err as Error).message);
    throw new DeliveryError(`${where}: the webhook did not answer: ${reason}`, false);
  }
  const text = (await response.text().catch(() => '')).trim();
  const said = text === '' ? '' : `: ${text.slice(0, 200).replace(/\s+/g, ' ')}`;
  if (response.ok) return `HTTP ${response.status}${said}`;
  // 408 and 429 pass with time; any other 4xx is the receiver refusing this payload or URL.
  const status = response.status;
  const permanent = status >= 400 && status < 500 && status !== 408 && status !== 429;
  throw new DeliveryError(`${where}: the webhook answered HTTP ${status}${said}`, permanent);
}

async function sendEmail(
  channel: Extract<Channel, { type: 'email' }>,
  message: Message,
  signal?: AbortSignal,
): Promise<string> {
  const { smtp } = channel;
  const where = `${channel.name} (email via ${smtp.host}:${smtp.port})`;
  const email = renderEmail(message, channel);
  const transport = nodemailer.createTransport({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.tls === 'implicit',
    requireTLS: smtp.tls === 'starttls',
    ignoreTLS: smtp.tls === 'none',
    ...(smtp.user !== undefined && { auth: { user: smtp.user, pass: smtp.password ?? '' } }),
    connectionTimeout: CONNECT_TIMEOUT_MS,
    greetingTimeout: CONNECT_TIMEOUT_MS,
    socketTimeout: DELIVERY_TIMEOUT_MS,
  });
  const abort = () => transport.close();
  signal?.addEventListener('abort', abort, { once: true });
  try {
    signal?.throwIfAborted();
    const info = (await transport.sendMail({
      from: channel.from,
      to: channel.to,
      subject: email.subject,
      text: email.text,
      messageId: email.messageId,
      headers: { 'X-Audit-Archiver-Event': message.eventId },
    })) as { response?: string };
    return info.response ?? 'accepted';
  } catch (err) {
    const e = err as { code?: string; responseCode?: number; response?: string; message?: string };
    // 5xx replies and a refused login are the server's last word; the rest may pass.
    const permanent = (e.responseCode !== undefined && e.responseCode >= 500) || e.code === 'EAUTH';
    const said = e.response ?? e.message ?? String(err);
    throw new DeliveryError(
      `${where}: the mail server did not take the message: ${e.code ? `${e.code}: ` : ''}${said.replace(/\s+/g, ' ').slice(0, 300)}`,
      permanent,
    );
  } finally {
    signal?.removeEventListener('abort', abort);
    transport.close();
  }
}
