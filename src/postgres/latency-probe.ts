import { Worker } from 'node:worker_threads';
import type pg from 'pg';

/** A new session's first probe: this many round trips back to back, before sampling starts. */
const FIRST_SAMPLES = 10;
/** While probed, each session times a round trip this often... */
const SAMPLE_EVERY_MS = 50;
/** ...and a probe reads the round trips of this last stretch: the last batch's work, at least. */
const WINDOW_MS = 2_000;
/** A probe that has not answered by then reads as unknown. */
const PROBE_TIMEOUT_MS = 10_000;
/** The thread stops sampling and closes a database's session after this long without a probe. */
const IDLE_MS = 30_000;

/**
 * The probe thread: one session per database; while a database is probed, it times a
 * round trip of `select 1` every SAMPLE_EVERY_MS, on a thread that does nothing else, and a
 * probe returns the round trips of the last WINDOW_MS (a new session's first probe takes
 * FIRST_SAMPLES back to back). Plain JavaScript (it runs as given, compiled or not) that
 * loads pg from the path the parent resolved.
 */
const THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const pg = require(workerData.pg);
const { firstSamples, everyMs, windowMs, idleMs } = workerData;
const sessions = new Map();
const close = (key) => {
  const session = sessions.get(key);
  sessions.delete(key);
  if (session) session.client.end().catch(() => undefined);
};
const sample = async (session) => {
  const start = performance.now();
  await session.client.query('select 1');
  const now = performance.now();
  session.samples.push({ at: now, ms: now - start });
  while (session.samples.length > 0 && session.samples[0].at < now - windowMs) session.samples.shift();
};
const keepSampling = async (key, session) => {
  try {
    while (sessions.get(key) === session && performance.now() - session.askedAt < idleMs) {
      await new Promise((resolve) => setTimeout(resolve, everyMs));
      await sample(session);
    }
  } catch {
    // The next probe opens a new session and says what is wrong.
  }
  if (sessions.get(key) === session) close(key);
};
parentPort.on('message', async ({ id, key, config }) => {
  try {
    let session = sessions.get(key);
    if (!session) {
      const client = new pg.Client(config);
      client.on('error', () => close(key));
      await client.connect();
      session = { client, samples: [], askedAt: performance.now() };
      sessions.set(key, session);
      for (let i = 0; i < firstSamples; i++) await sample(session);
      void keepSampling(key, session);
    }
    session.askedAt = performance.now();
    const since = performance.now() - windowMs;
    parentPort.postMessage({ id, times: session.samples.filter((s) => s.at >= since).map((s) => s.ms) });
  } catch (err) {
    close(key);
    parentPort.postMessage({ id, error: String((err && err.message) || err) });
  }
});
`;

type Answer = { id: number; times: number[] } | { id: number; error: string };

/**
 * How long a trivial statement takes a client of the database, round trip, in ms, over the
 * last couple of seconds (while the archive worked, when it did): what the impact controller
 * judges the archive's effect on everyone else by (docs/performance-tuning.md). The round
 * trips are timed all along, on a thread of their own, so a worker busy with an export does
 * not pass for a busy database, and a burst of the archive's work is seen as other clients
 * see it; the session is the archiver's (application_name audit-archiver). A probe that fails
 * or times out reads as null (unknown): the other signals still count, and the next batch
 * probes again.
 */
export class LatencyProbe {
  private thread: Worker | undefined;
  private nextId = 0;
  private readonly pending = new Map<number, (answer: Answer | null) => void>();

  /** The 90th percentile of the window's round trips (their tail, not their luckiest), or null. */
  async probe(database: string, config: pg.ClientConfig): Promise<number | null> {
    const id = this.nextId++;
    const answer = await new Promise<Answer | null>((resolve) => {
      const timer = setTimeout(() => settle(null), PROBE_TIMEOUT_MS);
      const settle = (a: Answer | null) => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(a);
      };
      this.pending.set(id, settle);
      this.threadNow().postMessage({ id, key: database, config });
    });
    if (!answer || 'error' in answer || answer.times.length === 0) return null;
    const sorted = [...answer.times].sort((a, b) => a - b);
    return Math.round(sorted[Math.floor(0.9 * (sorted.length - 1))]! * 100) / 100;
  }

  async close(): Promise<void> {
    const thread = this.thread;
    this.thread = undefined;
    await thread?.terminate();
  }

  private threadNow(): Worker {
    if (this.thread) return this.thread;
    const thread = new Worker(THREAD, {
      eval: true,
      workerData: {
        pg: require.resolve('pg'),
        firstSamples: FIRST_SAMPLES,
        everyMs: SAMPLE_EVERY_MS,
        windowMs: WINDOW_MS,
        idleMs: IDLE_MS,
      },
    });
    // Never what keeps the worker process alive.
    thread.unref();
    thread.on('message', (answer: Answer) => this.pending.get(answer.id)?.(answer));
    const lost = () => {
      if (this.thread === thread) this.thread = undefined;
      for (const settle of [...this.pending.values()]) settle(null);
    };
    thread.on('error', lost);
    thread.on('exit', lost);
    this.thread = thread;
    return thread;
  }
}
