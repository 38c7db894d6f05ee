import { Worker } from 'node:worker_threads';
import type pg from 'pg';

/** Round trips timed per probe: enough for its second slowest to stand for the tail. */
const SAMPLES = 10;
/** A probe that has not answered by then reads as unknown. */
const PROBE_TIMEOUT_MS = 10_000;
/** The thread closes a database's probe session after this long without a probe. */
const IDLE_MS = 30_000;

/**
 * The probe thread: one session per database, kept between probes, each probe `SAMPLES`
 * round trips of `select 1` timed on a thread that does nothing else. Plain JavaScript (it
 * runs as given, compiled or not) that loads pg from the path the parent resolved.
 */
const THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const pg = require(workerData.pg);
const sessions = new Map();
const close = (key) => {
  const session = sessions.get(key);
  sessions.delete(key);
  if (session) {
    clearTimeout(session.idle);
    session.client.end().catch(() => undefined);
  }
};
parentPort.on('message', async ({ id, key, config, samples, idleMs }) => {
  try {
    let session = sessions.get(key);
    if (!session) {
      const client = new pg.Client(config);
      client.on('error', () => close(key));
      await client.connect();
      session = { client };
      sessions.set(key, session);
    }
    clearTimeout(session.idle);
    const times = [];
    for (let i = 0; i < samples; i++) {
      const start = performance.now();
      await session.client.query('select 1');
      times.push(performance.now() - start);
    }
    session.idle = setTimeout(() => close(key), idleMs);
    parentPort.postMessage({ id, times });
  } catch (err) {
    close(key);
    parentPort.postMessage({ id, error: String((err && err.message) || err) });
  }
});
`;

type Answer = { id: number; times: number[] } | { id: number; error: string };

/**
 * How long a trivial statement takes a client of the database right now, round trip, in ms:
 * what the impact controller judges the archive's effect on everyone else by
 * (docs/performance-tuning.md). The round trips are timed on a thread of their own, so a
 * worker busy with an export does not pass for a busy database; its session is the
 * archiver's (application_name audit-archiver). A probe that fails or times out reads as
 * null (unknown): the other signals still count, and the next batch probes again.
 */
export class LatencyProbe {
  private thread: Worker | undefined;
  private nextId = 0;
  private readonly pending = new Map<number, (answer: Answer | null) => void>();

  /** The second slowest of the probe's round trips (its tail, not its luckiest), or null. */
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
      this.threadNow().postMessage({
        id,
        key: database,
        config,
        samples: SAMPLES,
        idleMs: IDLE_MS,
      });
    });
    if (!answer || 'error' in answer) return null;
    const sorted = [...answer.times].sort((a, b) => a - b);
    return Math.round(sorted[Math.max(0, sorted.length - 2)]! * 100) / 100;
  }

  async close(): Promise<void> {
    const thread = this.thread;
    this.thread = undefined;
    await thread?.terminate();
  }

  private threadNow(): Worker {
    if (this.thread) return this.thread;
    const thread = new Worker(THREAD, { eval: true, workerData: { pg: require.resolve('pg') } });
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
