import { main } from '../../src/app/cli/main';
import type { CliResult } from './cli';

type Write = typeof process.stdout.write;

/** A stand-in for a stream's `write` that keeps what is written. */
function keep(into: string[]): Write {
  const write = (chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
    into.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    const done = rest.find((r): r is () => void => typeof r === 'function');
    done?.();
    return true;
  };
  return write;
}

let running = false;

/**
 * Runs `audit-archiver ARGS` in this process through the CLI's own `main` (which resolves to
 * the exit code and never exits), with stdout and stderr captured: the same code path as the
 * binary, without two seconds of process start-up per case. Environment variables in `env`
 * are set for the call and put back afterwards. One call at a time.
 */
export async function runMain(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<CliResult> {
  if (running) throw new Error('runMain: one call at a time (it captures process output)');
  running = true;
  const stdout: string[] = [];
  const stderr: string[] = [];
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  const { stdout: outStream, stderr: errStream } = process;
  const out = Object.getOwnPropertyDescriptor(outStream, 'write');
  const err = Object.getOwnPropertyDescriptor(errStream, 'write');
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  process.stdout.write = keep(stdout);
  process.stderr.write = keep(stderr);
  try {
    const code = await main(['node', 'audit-archiver', ...args]);
    return { code, stdout: stdout.join(''), stderr: stderr.join('') };
  } finally {
    // Own properties put back as they were (usually none: the prototype's write shows again).
    if (out) Object.defineProperty(outStream, 'write', out);
    else delete (outStream as { write?: Write }).write;
    if (err) Object.defineProperty(errStream, 'write', err);
    else delete (errStream as { write?: Write }).write;
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    running = false;
  }
}

/** Lines of a stack trace (`    at f (file:1:2)`): none may reach an operator without --verbose. */
export function stackLines(text: string): string[] {
  return text.split('\n').filter((l) => /^\s+at /.test(l));
}
