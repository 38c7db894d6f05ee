import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { DeadlineError, sleep } from './util';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const live = new Set<ManagedProcess>();

/**
 * SIGKILLs every process the harness started and that still runs. Synchronous, so that it
 * also works from process.on('exit') when the harness dies on an error it did not expect.
 */
export function killAllSync(): void {
  for (const p of live) p.killSync();
}

/**
 * A server or worker process of the private stack. It runs in a process group of its own, so
 * a Ctrl-C in the terminal reaches only the harness, which then tears everything down in
 * order; its output goes straight to a log file, so a chatty server cannot fill a pipe.
 */
export class ManagedProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<ExitInfo> = Promise.resolve({ code: null, signal: null });
  /** Set when the harness itself stops the process: only other exits are unexpected. */
  private stopping = false;

  constructor(
    readonly name: string,
    private readonly command: string,
    private readonly args: readonly string[],
    private readonly options: {
      env: NodeJS.ProcessEnv;
      logFile: string;
      cwd?: string;
      onUnexpectedExit?: (info: ExitInfo) => void;
    },
  ) {}

  get logFile(): string {
    return this.options.logFile;
  }

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get running(): boolean {
    return (
      this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
    );
  }

  start(): void {
    if (this.running) throw new Error(`${this.name} is already running`);
    const fd = openSync(this.options.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(this.command, [...this.args], {
        cwd: this.options.cwd,
        env: this.options.env,
        stdio: ['ignore', fd, fd],
        detached: true,
      });
    } finally {
      closeSync(fd);
    }
    this.child = child;
    this.stopping = false;
    live.add(this);
    this.exited = new Promise<ExitInfo>((resolve) => {
      const done = (info: ExitInfo) => {
        live.delete(this);
        if (!this.stopping) this.options.onUnexpectedExit?.(info);
        resolve(info);
      };
      child.once('exit', (code, signal) => done({ code, signal }));
      child.once('error', () => done({ code: null, signal: null }));
    });
  }

  /** Sends a signal; false when the process is not running. */
  signal(signal: NodeJS.Signals): boolean {
    if (!this.running) return false;
    if (signal === 'SIGKILL' || signal === 'SIGTERM' || signal === 'SIGINT') this.stopping = true;
    return this.child!.kill(signal);
  }

  /** Waits for the process to exit, at most `timeoutMs`. */
  async waitExit(timeoutMs: number): Promise<ExitInfo> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new DeadlineError(`${this.name} did not exit within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.exited, expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Stops the process with `signal` and waits up to `graceMs` for it to exit, then SIGKILLs
   * it. A stopped (SIGSTOP) process is continued first, or it could not act on the signal.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<ExitInfo> {
    if (!this.running) return this.exited;
    this.stopping = true;
    this.child!.kill(signal);
    if (signal !== 'SIGKILL') this.child!.kill('SIGCONT');
    try {
      return await this.waitExit(graceMs);
    } catch {
      this.child!.kill('SIGKILL');
      return this.waitExit(10_000);
    }
  }

  killSync(): void {
    if (!this.running) return;
    this.stopping = true;
    try {
      this.child!.kill('SIGKILL');
    } catch {
      // already gone
    }
  }

  /** Gives a just-started process a moment, failing early if it exits during startup. */
  async settle(ms: number): Promise<void> {
    await sleep(ms);
    if (!this.running) throw new Error(`${this.name} exited during startup (see ${this.logFile})`);
  }
}
