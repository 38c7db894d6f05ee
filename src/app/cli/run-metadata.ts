import { hostname, userInfo } from 'node:os';
import { configDigest } from '../../config';
import { runMemo, staticDetails, type RunMemo } from '../../shared/run-metadata';
import type { CommandContext } from './context';

/** Flags of a command line as the CLI takes them: a value, several, or a switch. */
export type Flags = Record<string, string | number | boolean | readonly string[] | undefined>;

/**
 * The command a run was started with, rebuilt from the parsed options (not process.argv, so
 * the config path and anything the shell saw stay out): `audit-archiver archive --table
 * public.audit_log --dry-run`.
 */
export function commandLine(command: string, flags: Flags = {}): string {
  const words = ['audit-archiver', command];
  for (const [name, value] of Object.entries(flags)) {
    const flag = `--${name}`;
    if (value === undefined || value === false) continue;
    if (value === true) words.push(flag);
    else if (typeof value === 'string' || typeof value === 'number') words.push(flag, quote(value));
    else for (const v of value) words.push(flag, quote(v));
  }
  return words.join(' ');
}

function quote(value: string | number): string {
  const text = String(value);
  return /^[\w.:/@%+=,-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/** `audit-archiver CLI (user@host)`: who started a run from the command line. */
export function cliStarter(): string {
  let user = 'unknown user';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry for this uid (some containers): the host still says where.
  }
  return `audit-archiver CLI (${user}@${hostname()})`;
}

/**
 * The memo and static details of a run the CLI starts (docs/web-ui.md): the config digest
 * and who started it in the memo; what it works on, which rows, and the command in the
 * details. Spread into client.workflow.start / execute options.
 */
export function cliRunMetadata(
  ctx: CommandContext,
  what: { scope: string; rows?: string; command: string },
): { memo: Record<string, string>; staticDetails: string } {
  const memo: RunMemo = { configDigest: configDigest(ctx.config), startedBy: cliStarter() };
  return { memo: runMemo(memo), staticDetails: staticDetails({ ...what, memo }) };
}
