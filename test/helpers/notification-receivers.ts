import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';

/**
 * What Slack and Microsoft Teams accept, as zod schemas the test receivers check every
 * payload against, and the receivers themselves (node:http), and Mailpit's API.
 */

const plainText = (max: number) =>
  z.strictObject({
    type: z.literal('plain_text'),
    text: z.string().min(1).max(max),
    emoji: z.boolean().optional(),
  });
const mrkdwnText = (max: number) =>
  z.strictObject({ type: z.literal('mrkdwn'), text: z.string().min(1).max(max) });

/** An incoming-webhook payload: text, and Block Kit blocks within Slack's documented limits. */
export const slackPayloadSchema = z.strictObject({
  text: z.string().min(1).max(40_000),
  blocks: z
    .array(
      z.discriminatedUnion('type', [
        z.strictObject({ type: z.literal('header'), text: plainText(150) }),
        z
          .strictObject({
            type: z.literal('section'),
            text: mrkdwnText(3000).optional(),
            fields: z.array(mrkdwnText(2000)).min(1).max(10).optional(),
          })
          .refine(
            (s) => s.text !== undefined || s.fields !== undefined,
            'a section needs text or fields',
          ),
        z.strictObject({
          type: z.literal('context'),
          elements: z.array(mrkdwnText(3000)).min(1).max(10),
        }),
        z.strictObject({
          type: z.literal('actions'),
          elements: z
            .array(
              z.strictObject({
                type: z.literal('button'),
                text: plainText(75),
                url: z.url().max(3000),
              }),
            )
            .min(1)
            .max(25),
        }),
      ]),
    )
    .min(1)
    .max(50),
});
export type SlackPayload = z.infer<typeof slackPayloadSchema>;

const cardElement = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('TextBlock'),
    text: z.string().min(1),
    wrap: z.boolean().optional(),
    size: z.enum(['Small', 'Default', 'Medium', 'Large', 'ExtraLarge']).optional(),
    weight: z.enum(['Lighter', 'Default', 'Bolder']).optional(),
    color: z
      .enum(['Default', 'Dark', 'Light', 'Accent', 'Good', 'Warning', 'Attention'])
      .optional(),
    fontType: z.enum(['Default', 'Monospace']).optional(),
    isSubtle: z.boolean().optional(),
  }),
  z.strictObject({
    type: z.literal('FactSet'),
    facts: z.array(z.strictObject({ title: z.string(), value: z.string() })).min(1),
  }),
]);

/** The message envelope of an Adaptive Card, as Teams workflows and incoming webhooks take it. */
export const teamsMessageSchema = z.strictObject({
  type: z.literal('message'),
  attachments: z
    .array(
      z.strictObject({
        contentType: z.literal('application/vnd.microsoft.card.adaptive'),
        contentUrl: z.null().optional(),
        content: z.strictObject({
          $schema: z.literal('http://adaptivecards.io/schemas/adaptive-card.json').optional(),
          type: z.literal('AdaptiveCard'),
          version: z.string().regex(/^1\.[0-5]$/),
          body: z.array(cardElement).min(1),
          actions: z
            .array(
              z.strictObject({
                type: z.literal('Action.OpenUrl'),
                title: z.string().min(1),
                url: z.url(),
              }),
            )
            .optional(),
          msteams: z.strictObject({ width: z.literal('Full') }).optional(),
        }),
      }),
    )
    .length(1),
});
export type TeamsMessage = z.infer<typeof teamsMessageSchema>;

/** One request a receiver got, with the answer it gave. */
export interface Received<T> {
  path: string;
  body: unknown;
  /** The body as the schema reads it, or the schema's complaint. */
  parsed: { ok: true; value: T } | { ok: false; problem: string };
  status: number;
}

/**
 * A webhook receiver on 127.0.0.1 that checks each POSTed JSON body against `schema` and
 * answers with `respond(n, path)`'s status (n: the request's number on its path, from 1), 400
 * for a body the schema refuses, as Slack and Teams do.
 */
export class WebhookReceiver<T> {
  readonly received: Received<T>[] = [];
  private server?: Server;
  private port = 0;

  constructor(
    private readonly schema: z.ZodType<T>,
    private readonly respond: (n: number, path: string) => number = () => 200,
  ) {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          body = undefined;
        }
        const checked = this.schema.safeParse(body);
        const parsed: Received<T>['parsed'] = checked.success
          ? { ok: true, value: checked.data }
          : { ok: false, problem: z.prettifyError(checked.error) };
        const path = req.url ?? '';
        const n = this.received.filter((r) => r.path === path).length + 1;
        const status = parsed.ok ? this.respond(n, path) : 400;
        this.received.push({ path, body, parsed, status });
        res.writeHead(status, { 'content-type': 'text/plain' });
        res.end(status < 300 ? 'ok' : parsed.ok ? 'server_error' : 'invalid_payload');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** The webhook URL of a path on this receiver (each test channel its own secret path). */
  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** Payloads the receiver accepted (2xx) on a path. */
  accepted(path: string): T[] {
    return this.received
      .filter((r) => r.path === path && r.status < 300 && r.parsed.ok)
      .map((r) => (r.parsed as { value: T }).value);
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
  }
}

export const MAILPIT = {
  host: process.env.STACK_MAILPIT_HOST ?? '127.0.0.1',
  smtpPort: Number(process.env.STACK_MAILPIT_SMTP_PORT ?? 1025),
  api: `http://${process.env.STACK_MAILPIT_HOST ?? '127.0.0.1'}:${process.env.STACK_MAILPIT_HTTP_PORT ?? 8025}/api/v1`,
};

export interface MailpitMessage {
  ID: string;
  MessageID: string;
  Subject: string;
  To: { Address: string }[];
}

/** Messages Mailpit holds for one recipient (each test uses an address of its own). */
export async function mailsTo(address: string): Promise<MailpitMessage[]> {
  const response = await fetch(
    `${MAILPIT.api}/search?query=${encodeURIComponent(`to:"${address}"`)}&limit=100`,
  );
  if (!response.ok) throw new Error(`Mailpit search answered HTTP ${response.status}`);
  return ((await response.json()) as { messages: MailpitMessage[] }).messages;
}

/** The plain-text body of a message Mailpit holds. */
export async function mailText(id: string): Promise<string> {
  const response = await fetch(`${MAILPIT.api}/message/${encodeURIComponent(id)}`);
  if (!response.ok) throw new Error(`Mailpit answered HTTP ${response.status}`);
  return ((await response.json()) as { Text: string }).Text;
}

/** Polls `read` until `done` says so or `ms` pass; the last value read. */
export async function eventually<T>(
  read: () => Promise<T>,
  done: (v: T) => boolean,
  ms = 20_000,
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > until) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
}
