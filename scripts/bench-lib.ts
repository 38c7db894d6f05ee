/**
 * What the bench:* scripts share: flags, scratch databases, an audit table of realistic rows,
 * activity timings read back from a workflow's history, and a plain table printer.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { DeleteObjectsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { temporal } from '@temporalio/proto';
import type pg from 'pg';
import { quoteIdent } from '../src/postgres/identifiers';
import { withDatabase } from '../test/helpers/database';

export { withDatabase };

// The local stack's MinIO answers to MinIO's dev credentials (temporal/lib.sh).
process.env.AWS_ACCESS_KEY_ID ??= 'minioadmin';
process.env.AWS_SECRET_ACCESS_KEY ??= 'minioadmin';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** `--name value` from the command line, else the environment's BENCH_NAME, else the default. */
export function flag(name: string, fallback: number, { zero = false } = {}): number {
  const at = process.argv.indexOf(`--${name}`);
  const text =
    at >= 0 ? process.argv[at + 1] : process.env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`];
  if (text === undefined) return fallback;
  const value = Number(text.replace(/_/g, ''));
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !zero))
    throw new Error(`--${name} must be a ${zero ? 'number, 0 or more' : 'positive number'}`);
  return value;
}

export const scratchName = (what: string) => `aa_bench_${what}_${randomBytes(4).toString('hex')}`;

export async function createDatabase(name: string, template?: string): Promise<void> {
  await withDatabase('postgres', (c) =>
    c.query(
      `create database ${quoteIdent(name)}${template ? ` template ${quoteIdent(template)}` : ''}`,
    ),
  );
}

export async function dropDatabase(name: string): Promise<void> {
  await withDatabase('postgres', (c) =>
    c.query(`drop database if exists ${quoteIdent(name)} with (force)`),
  );
}

/**
 * An audit table of `rows` rows of about 300 bytes each (as PostgreSQL stores them), all
 * older than `oldestDays - spanDays` days, spread over `spanDays` days.
 */
export async function createAuditRows(
  client: pg.Client,
  table: string,
  rows: number,
  options: { spanDays?: number; oldestDays?: number } = {},
): Promise<void> {
  const span = options.spanDays ?? 30;
  const oldest = options.oldestDays ?? 400;
  await client.query(`create table ${quoteIdent(table)} (
      id bigint generated always as identity primary key,
      created_at timestamptz not null,
      actor text not null,
      action text not null,
      target text,
      payload jsonb)`);
  await client.query(
    `insert into ${quoteIdent(table)} (created_at, actor, action, target, payload)
     select now() - $2::int * interval '1 day' + (g::float8 / $1::int) * $3::int * interval '1 day',
            'user-' || (g % 5000), (array['login','update','delete','export'])[1 + g % 4],
            'orders/' || (g::bigint * 7919 % 1000000),
            jsonb_build_object('ip', '10.' || (g % 250) || '.' || (g % 199) || '.' || (g % 97),
                               'agent', 'Mozilla/5.0 (X11; Linux x86_64) bench/' || (g % 13),
                               'session', md5(g::text), 'changes', g % 17)
       from generate_series(1, $1::int) as g`,
    [rows, oldest, span],
  );
  await client.query(`create index on ${quoteIdent(table)} (created_at)`);
  await client.query(`vacuum analyze ${quoteIdent(table)}`);
}

/** One completed activity of a history: its type, and when it was scheduled and completed (ms). */
export interface ActivitySpan {
  type: string;
  from: number;
  to: number;
}

/** Every completed activity of a history, scheduled to completed. */
export function activitySpans(history: temporal.api.history.v1.IHistory): ActivitySpan[] {
  const scheduled = new Map<string, { type: string; at: number }>();
  const spans: ActivitySpan[] = [];
  const ms = (t: temporal.api.history.v1.IHistoryEvent['eventTime']) =>
    Number(t?.seconds ?? 0) * 1000 + Math.floor((t?.nanos ?? 0) / 1e6);
  for (const e of history.events ?? []) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s)
      scheduled.set(String(e.eventId), { type: s.activityType?.name ?? '?', at: ms(e.eventTime) });
    const c = e.activityTaskCompletedEventAttributes;
    const start = c && scheduled.get(String(c.scheduledEventId));
    if (start) spans.push({ type: start.type, from: start.at, to: ms(e.eventTime) });
  }
  return spans;
}

/**
 * How long at least one span of the given types was open, in ms: spans that overlap (an
 * export beside a verify) count once, so this is wall time, not a sum of activity times.
 */
export function coveredMs(spans: readonly ActivitySpan[], types: readonly string[]): number {
  const wanted = spans.filter((s) => types.includes(s.type)).sort((a, b) => a.from - b.from);
  let covered = 0;
  let end = -Infinity;
  for (const { from, to } of wanted) {
    if (to <= end) continue;
    covered += to - Math.max(from, end);
    end = to;
  }
  return covered;
}

/** Peak resident set size of this process, sampled every 50 ms until stop() is called. */
export function sampleRss(): { stop(): number } {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, process.memoryUsage().rss);
    },
  };
}

/**
 * CPU seconds (user + system) the local PostgreSQL server has used so far, from the kernel's
 * accounting of its processes: every live postgres process, plus what the postmaster's exited
 * children (backends that have ended) used. The difference of two readings is the server's
 * CPU in between, whichever backends did the work. null when no postgres process is visible
 * (a server on another host or in another container).
 */
export function postgresCpuSeconds(): number | null {
  const TICKS_PER_SECOND = 100; // USER_HZ: 100 on every Linux architecture Node.js runs on
  let ticks = 0;
  let seen = false;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    } catch {
      continue; // ended since the listing
    }
    // pid (comm) state ppid ...: comm may hold spaces, so split after its closing paren.
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    if (comm !== 'postgres') continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const [utime, stime, cutime, cstime] = [11, 12, 13, 14].map((i) => Number(fields[i]));
    const parentIsPostgres = readParentComm(fields[1]!) === 'postgres';
    ticks += utime! + stime! + (parentIsPostgres ? 0 : cutime! + cstime!);
    seen = true;
  }
  return seen ? ticks / TICKS_PER_SECOND : null;
}

function readParentComm(ppid: string): string | undefined {
  try {
    return readFileSync(`/proc/${ppid}/comm`, 'latin1').trim();
  } catch {
    return undefined;
  }
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const at = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[at]!;
}

/** Prints rows as an aligned text table, the first row being the header. */
export function printTable(rows: (string | number)[][]): void {
  const text = rows.map((r) => r.map(String));
  const widths = text[0]!.map((_, i) => Math.max(...text.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  process.stdout.write(`${line(text[0]!)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  for (const r of text.slice(1)) process.stdout.write(`${line(r)}\n`);
}

export const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
export const mib = (bytes: number) => fmt(bytes / 1024 / 1024, 1);

/** Deletes every object under a prefix of the bucket (a benchmark's own objects). */
export async function deletePrefix(s3: S3Client, bucket: string, prefix: string): Promise<void> {
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
    if (keys.length > 0)
      await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
    token = page.NextContinuationToken;
  } while (token);
}
