import { createHash } from 'node:crypto';
import type { Message } from './message';

/**
 * A message in each channel's own form: an email (plain text), a Slack incoming-webhook
 * payload (text and Block Kit blocks) and a Microsoft Teams Adaptive Card message. Pure
 * functions, unit-tested against the receivers' schemas (test/unit/notifications.test.ts).
 */

const SEVERITY_LABEL = { info: 'INFO', warning: 'WARNING', error: 'ERROR' } as const;

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

// --- email ----------------------------------------------------------------------------------

export interface EmailContent {
  subject: string;
  text: string;
  /** `<...@domain>`: the same for every attempt of one event on one channel. */
  messageId: string;
}

/**
 * The Message-ID of an event's email on a channel: derived from the event id, so a receiver
 * that keeps Message-IDs (most mail stores, Mailpit, Gmail threads) sees a resend as the
 * same message.
 */
export function messageIdOf(eventId: string, channel: string, from: string): string {
  const hash = createHash('sha256').update(`${eventId}\n${channel}`).digest('hex').slice(0, 40);
  const domain = from.slice(from.lastIndexOf('@') + 1) || 'audit-archiver.invalid';
  return `<aa-${hash}@${domain}>`;
}

export function renderEmail(
  message: Message,
  channel: { name: string; from: string; subjectPrefix: string },
): EmailContent {
  const lines = [message.summary, ''];
  if (message.error) {
    lines.push(
      `Error: ${message.error.type}${message.error.step ? ` (in ${message.error.step})` : ''}`,
      message.error.message,
      '',
    );
  }
  if (message.details.length > 0) lines.push(...message.details, '');
  const width = Math.max(...message.facts.map(([label]) => label.length));
  for (const [label, value] of message.facts)
    lines.push(`${`${label}:`.padEnd(width + 2)}${value}`);
  if (message.link) lines.push('', `${message.link.label}:`, message.link.url);
  lines.push('', `-- audit-archiver, channel ${channel.name}, event ${message.eventId}`);
  const prefix = channel.subjectPrefix === '' ? '' : `${channel.subjectPrefix} `;
  return {
    // Subjects are one line: a newline in a name must not start a header.
    subject: clip(
      `${prefix}${SEVERITY_LABEL[message.severity]} ${message.title}`.replace(/[\r\n]+/g, ' '),
      250,
    ),
    text: `${lines.join('\n')}\n`,
    messageId: messageIdOf(message.eventId, channel.name, channel.from),
  };
}

// --- Slack ----------------------------------------------------------------------------------

/** Slack's mrkdwn control characters, escaped as Slack asks (&amp; &lt; &gt;). */
function mrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export type SlackBlock =
  | { type: 'header'; text: { type: 'plain_text'; text: string } }
  | {
      type: 'section';
      text?: { type: 'mrkdwn'; text: string };
      fields?: { type: 'mrkdwn'; text: string }[];
    }
  | { type: 'context'; elements: { type: 'mrkdwn'; text: string }[] }
  | {
      type: 'actions';
      elements: { type: 'button'; text: { type: 'plain_text'; text: string }; url: string }[];
    };

export interface SlackPayload {
  /** The notification text and the fallback where blocks cannot be shown. */
  text: string;
  blocks: SlackBlock[];
}

const SLACK_ICON = { info: ':white_check_mark:', warning: ':warning:', error: ':x:' } as const;

/** An incoming-webhook payload within Block Kit's limits (header 150, text 3000, 10 fields). */
export function renderSlack(message: Message): SlackPayload {
  const blocks: SlackBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(message.title, 150) } },
    {
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: clip(`${SLACK_ICON[message.severity]} ${mrkdwn(message.summary)}`, 3000),
      },
    },
    {
      type: 'section',
      fields: message.facts.slice(0, 10).map(([label, value]) => ({
        type: 'mrkdwn',
        text: clip(`*${label}*\n${mrkdwn(value)}`, 2000),
      })),
    },
  ];
  if (message.error) {
    const head = `*${mrkdwn(message.error.type)}*${message.error.step ? ` in \`${mrkdwn(message.error.step)}\`` : ''}`;
    blocks.push({
      type: 'section',
      // A code block keeps the message as written; ``` inside it would end it.
      text: {
        type: 'mrkdwn',
        text: `${head}\n\`\`\`${clip(mrkdwn(message.error.message.replace(/```/g, "'''")), 2900)}\`\`\``,
      },
    });
  }
  if (message.details.length > 0) {
    blocks.push({
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: clip(message.details.map((d) => `• ${mrkdwn(d)}`).join('\n'), 3000),
      },
    });
  }
  if (message.link) {
    blocks.push({
      type: 'actions',
      elements: [
        {
          type: 'button',
          text: { type: 'plain_text', text: clip(message.link.label, 75) },
          url: message.link.url,
        },
      ],
    });
  }
  blocks.push({
    type: 'context',
    elements: [
      { type: 'mrkdwn', text: clip(`audit-archiver · event ${mrkdwn(message.eventId)}`, 3000) },
    ],
  });
  const error = message.error ? `: ${message.error.type}` : '';
  return {
    text: clip(`${SEVERITY_LABEL[message.severity]} ${message.title}${error}`, 3000),
    blocks,
  };
}

// --- Microsoft Teams --------------------------------------------------------------------------

export type CardElement =
  | {
      type: 'TextBlock';
      text: string;
      wrap: true;
      size?: 'Large' | 'Medium';
      weight?: 'Bolder';
      color?: 'Attention' | 'Warning' | 'Good';
      fontType?: 'Monospace';
      isSubtle?: boolean;
    }
  | { type: 'FactSet'; facts: { title: string; value: string }[] };

export interface TeamsPayload {
  type: 'message';
  attachments: {
    contentType: 'application/vnd.microsoft.card.adaptive';
    contentUrl: null;
    content: {
      $schema: 'http://adaptivecards.io/schemas/adaptive-card.json';
      type: 'AdaptiveCard';
      version: '1.4';
      body: CardElement[];
      actions?: { type: 'Action.OpenUrl'; title: string; url: string }[];
      msteams: { width: 'Full' };
    };
  }[];
}

const CARD_COLOR = { info: 'Good', warning: 'Warning', error: 'Attention' } as const;

/**
 * The message as an Adaptive Card 1.4 in the `message` envelope that Teams workflows ("post
 * to a channel when a webhook request is received") and incoming webhooks accept.
 */
export function renderTeams(message: Message): TeamsPayload {
  const body: CardElement[] = [
    {
      type: 'TextBlock',
      text: message.title,
      wrap: true,
      size: 'Large',
      weight: 'Bolder',
      color: CARD_COLOR[message.severity],
    },
    { type: 'TextBlock', text: message.summary, wrap: true },
    {
      type: 'FactSet',
      facts: message.facts.map(([title, value]) => ({ title, value })),
    },
  ];
  if (message.error) {
    body.push(
      {
        type: 'TextBlock',
        text: `${message.error.type}${message.error.step ? ` in ${message.error.step}` : ''}`,
        wrap: true,
        weight: 'Bolder',
        color: 'Attention',
      },
      { type: 'TextBlock', text: message.error.message, wrap: true, fontType: 'Monospace' },
    );
  }
  for (const line of message.details)
    body.push({ type: 'TextBlock', text: `- ${line}`, wrap: true });
  body.push({ type: 'TextBlock', text: `event ${message.eventId}`, wrap: true, isSubtle: true });
  return {
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: '1.4',
          body,
          ...(message.link && {
            actions: [{ type: 'Action.OpenUrl', title: message.link.label, url: message.link.url }],
          }),
          msteams: { width: 'Full' },
        },
      },
    ],
  };
}
