import type { Rng } from './rng';
import type { ChaosStack } from './stack';
import type { Stream, Toxic } from './toxiproxy';
import type { ChaosWorker, Workers } from './workers';
import { secs, sleep } from './util';

/** What a fault needs to act on. */
export interface FaultEnv {
  stack: ChaosStack;
  workers: Workers;
  rng: Rng;
}

/** A fault in place: what it is, how long it stays, and how it is taken away again. */
export interface InjectedFault {
  description: string;
  holdMs: number;
  heal: () => Promise<string | void>;
}

interface FaultKind {
  name: string;
  weight: number;
  applicable?: (env: FaultEnv) => boolean;
  inject: (env: FaultEnv) => Promise<InjectedFault>;
}

const healed = () => Promise.resolve();

/** An inclusive range a number is drawn from (Rng.int). */
type Range = [min: number, max: number];

/** Where a toxic fault sits and for how long: its chance of hitting the replies (downstream)
 * rather than the requests, and the range its hold is drawn from. */
type Placement = [downstream: number, holdMs: Range];

/** A toxic on one proxy for a few seconds (toxics hit existing connections as well as new ones). */
function toxicFault(
  name: string,
  weight: number,
  proxy: 'postgres' | 's3',
  [downstream, holdRange]: Placement,
  draw: (rng: Rng) => [toxic: Toxic, what: string],
): FaultKind {
  return {
    name,
    weight,
    inject: async ({ stack, rng }) => {
      const [toxic, what] = draw(rng);
      const stream: Stream = rng.chance(downstream) ? 'downstream' : 'upstream';
      const holdMs = rng.int(...holdRange);
      const toxicName = await stack.toxiproxy.addToxic(proxy, stream, toxic);
      return {
        description: `${proxy} link: ${what} (${stream}) for ${secs(holdMs)}`,
        holdMs,
        heal: () => stack.toxiproxy.removeToxic(proxy, toxicName),
      };
    },
  };
}

function networkFaults(proxy: 'postgres' | 's3'): FaultKind[] {
  const p = proxy === 'postgres' ? 'pg' : 's3';
  return [
    toxicFault(`${p}-latency`, 3, proxy, [0.7, [3_000, 9_000]], (rng) => {
      const latency = rng.int(100, 1500);
      const jitter = rng.int(0, Math.floor(latency / 2));
      return [
        { type: 'latency', attributes: { latency, jitter } },
        `latency ${latency}±${jitter} ms`,
      ];
    }),
    // timeout 0 drops every byte until the toxic goes: replies stall, then (on removal)
    // toxiproxy closes the stalled connections.
    toxicFault(`${p}-stall`, 3, proxy, [0.7, [2_000, 9_000]], () => [
      { type: 'timeout', attributes: { timeout: 0 } },
      'stalled replies, then the connections close',
    ]),
    toxicFault(`${p}-reset`, 3, proxy, [0.5, [1_000, 5_000]], (rng) => {
      const timeout = rng.int(0, 800);
      return [
        { type: 'reset_peer', attributes: { timeout } },
        `connections reset (RST) ${timeout} ms after data`,
      ];
    }),
    toxicFault(`${p}-cut-midstream`, 3, proxy, [0.6, [2_000, 7_000]], (rng) => {
      const bytes = rng.int(64, proxy === 's3' ? 60_000 : 20_000);
      return [
        { type: 'limit_data', attributes: { bytes } },
        `connections cut after ${bytes} bytes`,
      ];
    }),
    toxicFault(`${p}-slicer`, 1, proxy, [0.5, [3_000, 8_000]], (rng) => {
      const size = rng.int(1, 64);
      const slicing = { average_size: size, size_variation: Math.floor(size / 2) };
      const attributes = { ...slicing, delay: rng.int(0, 2_000) };
      return [{ type: 'slicer', attributes }, `data sliced into ~${size}-byte pieces`];
    }),
    toxicFault(`${p}-bandwidth`, 1, proxy, [0.5, [3_000, 8_000]], (rng) => {
      const rate = rng.int(2, 64);
      return [{ type: 'bandwidth', attributes: { rate } }, `bandwidth ${rate} KB/s`];
    }),
    {
      name: `${p}-outage`,
      weight: 2,
      inject: async ({ stack, rng }) => {
        const holdMs = rng.int(2_000, 8_000);
        await stack.toxiproxy.setEnabled(proxy, false);
        return {
          description: `${proxy} unreachable (connections closed, new ones refused) for ${secs(holdMs)}`,
          holdMs,
          heal: () => stack.toxiproxy.setEnabled(proxy, true),
        };
      },
    },
  ];
}

/** The store's proxy failing a drawn share (in percent) of requests for a few seconds. */
function storeFault(
  name: string,
  weight: number,
  kind: 'slowdown' | 'error-after-write',
  [shareRange, holdRange]: [share: Range, holdMs: Range],
  what: (percent: number) => string,
): FaultKind {
  return {
    name,
    weight,
    inject: ({ stack, rng }) => {
      const percent = rng.int(...shareRange);
      const holdMs = rng.int(...holdRange);
      stack.s3Proxy.setMode({ kind, share: percent / 100 });
      return Promise.resolve({
        description: `${what(percent)}, for ${secs(holdMs)}`,
        holdMs,
        heal: () => Promise.resolve(stack.s3Proxy.setMode({ kind: 'pass' })),
      });
    },
  };
}

const storeFaults: FaultKind[] = [
  storeFault(
    's3-slowdown',
    3,
    'slowdown',
    [
      [40, 100],
      [2_000, 9_000],
    ],
    (percent) => `store answers ${percent}% of requests 503 SlowDown`,
  ),
  storeFault(
    's3-500-after-write',
    2,
    'error-after-write',
    [
      [30, 100],
      [2_000, 7_000],
    ],
    (percent) => `store does ${percent}% of writes but answers 500 InternalError`,
  ),
];

const pickRunning = (env: FaultEnv): ChaosWorker => env.rng.pick(env.workers.running);

const workerFaults: FaultKind[] = [
  {
    name: 'worker-sigkill',
    weight: 4,
    applicable: (env) => env.workers.running.length > 0,
    inject: async (env) => {
      const worker = pickRunning(env);
      const label = worker.label;
      // B may stay away after its kill (it left); A always comes back.
      const comesBack = worker === env.workers.a || env.rng.chance(0.5);
      const holdMs = env.rng.int(500, 5_000);
      await worker.kill();
      return {
        description: `SIGKILL ${label}${comesBack ? `, started again after ${secs(holdMs)}` : ', not started again'}`,
        holdMs: comesBack ? holdMs : 0,
        heal: () => (comesBack ? worker.start() : healed()),
      };
    },
  },
  {
    name: 'worker-sigstop',
    weight: 3,
    applicable: (env) => env.workers.running.length > 0,
    inject: (env) => {
      const worker = pickRunning(env);
      // Sometimes longer than the lock's (15 s) and the delete's (10 s) heartbeat timeouts, so
      // Temporal gives the frozen worker's activities to another worker or a later attempt.
      const holdMs = env.rng.chance(0.35) ? env.rng.int(16_000, 26_000) : env.rng.int(2_000, 9_000);
      const label = worker.label;
      worker.freeze();
      return Promise.resolve({
        description: `SIGSTOP ${label}, SIGCONT after ${secs(holdMs)}`,
        holdMs,
        heal: () => Promise.resolve(worker.thaw()),
      });
    },
  },
  {
    name: 'worker-b-joins-or-leaves',
    weight: 2,
    inject: async (env) => {
      const b = env.workers.b;
      if (b.state === 'down') {
        await b.start();
        return {
          description: `worker B joins the task queue (${b.label})`,
          holdMs: 0,
          heal: healed,
        };
      }
      const label = b.label;
      if (b.state === 'frozen' || env.rng.chance(0.3)) {
        await b.kill();
        return { description: `worker B leaves: SIGKILL ${label}`, holdMs: 0, heal: healed };
      }
      await b.leave();
      return {
        description: `worker B leaves: SIGTERM ${label} (graceful drain)`,
        holdMs: 0,
        heal: healed,
      };
    },
  },
];

/** A server of the stack killed or stopped, down for a drawn time, then started again. */
function serverRestart(
  name: string,
  label: string,
  server: 'temporal' | 'minio',
  maxDownMs: number,
): FaultKind {
  return {
    name,
    weight: 2,
    inject: (env) => {
      const how = env.rng.chance(0.6) ? 'SIGKILL' : 'SIGTERM';
      const downMs = env.rng.int(500, maxDownMs);
      return Promise.resolve({
        description: `${label} ${how}, down ${secs(downMs)}, started again`,
        holdMs: 0,
        heal: () => env.stack[server].restart(how, downMs),
      });
    },
  };
}

const serverFaults: FaultKind[] = [
  serverRestart('temporal-restart', 'Temporal server', 'temporal', 5_000),
  serverRestart('minio-restart', 'MinIO', 'minio', 6_000),
  {
    name: 'postgres-restart',
    weight: 2,
    inject: async (env) => {
      if (env.rng.chance(0.5)) {
        await env.stack.pg.crashRestart();
        return {
          description:
            'PostgreSQL crash-restart (pg_ctl restart -m immediate: every session killed, recovery)',
          holdMs: 0,
          heal: healed,
        };
      }
      const downMs = env.rng.int(1_000, 6_000);
      await env.stack.pg.stop('fast');
      return {
        description: `PostgreSQL stopped (-m fast), down ${secs(downMs)}, started again`,
        holdMs: downMs,
        heal: () => env.stack.pg.start(),
      };
    },
  },
  {
    name: 'postgres-read-only',
    weight: 2,
    inject: async (env) => {
      const holdMs = env.rng.int(3_000, 15_000);
      const n = await env.stack.pg.failOver(env.stack.database, true);
      return {
        description: `a failover to a read-only server for ${secs(holdMs)}: ${n} sessions cut, new ones read-only, then cut again and writable`,
        holdMs,
        heal: async () => {
          await env.stack.pg.failOver(env.stack.database, false);
        },
      };
    },
  },
  {
    name: 'pg-terminate-backend',
    weight: 3,
    inject: async (env) => {
      const lockOnly = env.rng.chance(0.4);
      const n = await env.stack.pg.terminateArchiverSessions(env.stack.database, lockOnly);
      return {
        description: `pg_terminate_backend of ${lockOnly ? "the archiver's lock session" : 'every archiver session (lock included)'}: ${n} terminated`,
        holdMs: 0,
        heal: healed,
      };
    },
  },
];

export const FAULT_KINDS: readonly FaultKind[] = [
  ...networkFaults('postgres'),
  ...networkFaults('s3'),
  ...storeFaults,
  ...workerFaults,
  ...serverFaults,
];

/** Picks the next fault (by weight, among those that make sense now) and puts it in place. */
export async function injectFault(
  env: FaultEnv,
  only?: readonly string[],
): Promise<{ kind: string; fault: InjectedFault }> {
  // Drawn among all kinds (or those of --only) first, so that the choice depends on the seed
  // alone; only a kind that makes no sense now (no worker to kill) is drawn again among
  // those that do.
  const all = FAULT_KINDS.filter((k) => !only || only.includes(k.name)).map((k) => ({
    weight: k.weight,
    value: k,
  }));
  let kind = env.rng.weighted(all);
  if (!(kind.applicable?.(env) ?? true))
    kind = env.rng.weighted(all.filter((c) => c.value.applicable?.(env) ?? true));
  return { kind: kind.name, fault: await kind.inject(env) };
}

/** Waits out a fault's hold time, then heals it. */
export async function holdAndHeal(fault: InjectedFault): Promise<void> {
  await sleep(fault.holdMs);
  await fault.heal();
}
