import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { PROJECT_DIR } from './stack';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const ENTRY = path.join(PROJECT_DIR, 'src', 'app', 'cli', 'main.ts');

/** Starts `audit-archiver ARGS` from the sources, as a separate process. */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, ['--require', 'tsx/cjs', ENTRY, ...args], {
    cwd: PROJECT_DIR,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/**
 * Runs `audit-archiver ARGS` to completion. With `timeoutMs`, a process still running then is
 * killed and the promise rejects: a command that should end must not hang the test.
 */
export function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs?: number,
): Promise<CliResult> {
  const child = spawnCli(args, env);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            child.kill('SIGKILL');
            reject(
              new Error(
                `audit-archiver ${args.join(' ')} did not exit within ${timeoutMs} ms:\n${stderr}`,
              ),
            );
          }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
