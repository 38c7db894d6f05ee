import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { createServer } from 'node:net';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Thrown when a wait passes its deadline: the harness never waits without one. */
export class DeadlineError extends Error {}

/**
 * Polls `fn` until it returns something other than undefined. Errors count as "not yet" (the
 * service may be restarting), but the last one is kept for the message if time runs out.
 */
export async function waitUntil<T>(
  what: string,
  timeoutMs: number,
  fn: () => Promise<T | undefined>,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const why = last === undefined ? '' : `; last error: ${errorText(last)}`;
      throw new DeadlineError(
        `timed out after ${Math.round(timeoutMs / 1000)}s waiting for ${what}${why}`,
      );
    }
    await sleep(intervalMs);
  }
}

/** Runs `fn`, failing with a DeadlineError if it has not settled within `timeoutMs`. */
export async function withDeadline<T>(
  what: string,
  timeoutMs: number,
  fn: () => Promise<T>,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(new DeadlineError(`${what} did not finish within ${Math.round(timeoutMs / 1000)}s`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([fn(), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port assigned');
  return address.port;
}

/** An error's message followed by its causes' messages: where a failure began. */
export function errorText(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e !== undefined && e !== null;) {
    if (e instanceof Error) {
      if (!parts.includes(e.message)) parts.push(e.message);
      e = e.cause;
    } else {
      parts.push(typeof e === 'string' ? e : JSON.stringify(e));
      break;
    }
  }
  return parts.join(': ');
}

/** The last `lines` lines of a log file (at most its last 64 KiB), for failure reports. */
export function tailFile(file: string, lines = 20): string {
  try {
    const size = statSync(file).size;
    const length = Math.min(size, 65_536);
    const buffer = Buffer.alloc(length);
    const fd = openSync(file, 'r');
    try {
      readSync(fd, buffer, 0, length, size - length);
    } finally {
      closeSync(fd);
    }
    return buffer
      .toString('utf8')
      .split('\n')
      .slice(-lines - 1)
      .join('\n')
      .trimEnd();
  } catch {
    return `(no log at ${file})`;
  }
}

const started = Date.now();

/** Prints a progress line with the seconds since the harness started. */
export function say(line: string): void {
  const seconds = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  process.stdout.write(`[${seconds}s] ${line}\n`);
}

/** `ms` as seconds with one decimal, for fault descriptions. */
export const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
