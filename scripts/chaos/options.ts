import { randomInt } from 'node:crypto';

export interface ChaosOptions {
  seed: number;
  quick: boolean;
  cycles: number;
  faultsPerCycle: number;
  /** Keep the temporary folder (logs, data) for a look afterwards. */
  keep: boolean;
  /** Draw faults only of these kinds (all kinds when undefined). */
  only?: readonly string[];
  /** Old rows in the table before the first cycle. */
  initialRows: number;
  /** Old rows the application adds before each archive run, so every run has work. */
  topUpRows: number;
  batchSize: number;
  /** Application statements per second during the fault phase. */
  opsPerSecond: number;
  /** A run still open this long after its start (during the fault phase) is stuck. */
  runTimeoutMs: number;
  /** After the fault phase, how long the run in flight has to finish. */
  settleTimeoutMs: number;
  validateTimeoutMs: number;
  restoreTimeoutMs: number;
  /** The whole run, setup and teardown included. */
  totalTimeoutMs: number;
}

export const USAGE = `usage: npm run chaos -- [--quick] [--seed N] [--cycles N] [--faults N] [--only KINDS] [--keep]
  --quick      2 cycles of 5 faults (a few minutes; part of npm test)
  --seed N     replay the plan of an earlier run (the seed is printed at the start)
  --cycles N   cycles to run (default 10, or 2 with --quick)
  --faults N   faults per cycle (default 11, or 5 with --quick)
  --only KINDS draw only faults of these kinds, comma-separated (e.g. postgres-read-only,s3-outage)
  --keep       keep the temporary folder with every server's data and log`;

export class UsageError extends Error {}

export function parseOptions(argv: readonly string[], kinds: readonly string[]): ChaosOptions {
  const quick = argv.includes('--quick');
  const number = (flag: string, fallback: number, min: number): number => {
    const at = argv.indexOf(flag);
    if (at < 0) return fallback;
    const value = Number(argv[at + 1]);
    if (!Number.isInteger(value) || value < min)
      throw new UsageError(`${flag} takes a whole number, ${min} or more`);
    return value;
  };
  const known = new Set(['--quick', '--keep', '--seed', '--cycles', '--faults', '--only']);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!known.has(arg)) throw new UsageError(`unknown argument ${arg}`);
    if (arg !== '--quick' && arg !== '--keep') i++;
  }
  const onlyAt = argv.indexOf('--only');
  const only = onlyAt < 0 ? undefined : (argv[onlyAt + 1] ?? '').split(',').filter(Boolean);
  const unknown = only?.filter((k) => !kinds.includes(k)) ?? [];
  if (only?.length === 0 || unknown.length > 0)
    throw new UsageError(
      `--only takes fault kinds, comma-separated${unknown.length ? `; not a kind: ${unknown.join(', ')}` : ''} (kinds: ${kinds.join(', ')})`,
    );
  const cycles = number('--cycles', quick ? 2 : 10, 1);
  const faultsPerCycle = number('--faults', quick ? 5 : 11, 0);
  const minute = 60_000;
  return {
    seed: number('--seed', randomInt(1, 2 ** 31 - 1), 0),
    quick,
    cycles,
    faultsPerCycle,
    keep: argv.includes('--keep'),
    only,
    initialRows: quick ? 1_500 : 3_000,
    topUpRows: quick ? 250 : 400,
    batchSize: 100,
    opsPerSecond: 8,
    runTimeoutMs: 10 * minute,
    settleTimeoutMs: 4 * minute,
    validateTimeoutMs: 3 * minute,
    restoreTimeoutMs: 5 * minute,
    // A backstop over the per-step deadlines: setup, then per cycle the fault phase (at most
    // ~45 s a fault), the settling run, validation and restore.
    totalTimeoutMs: (quick ? 20 : 5 + cycles * (faultsPerCycle * 0.75 + 12)) * minute,
  };
}
