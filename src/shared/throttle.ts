import type { ResolvedTableRef } from './table-ref';

/**
 * Adaptive throttling (docs/performance-tuning.md): whether the archiver may start its next batch, and if
 * not, how long to wait and why. Pure and deterministic: ArchiveTable calls it with the
 * signals an activity read from PostgreSQL and the timings of its own last batch, so the
 * decision replays identically from history. Workflows import this file.
 */

/** Limits resolved from the config (`defaults.throttle`, overridden per database). Null = off. */
export interface ThrottleLimits {
  maxReplicaLagMs: number | null;
  maxWalReadyFiles: number | null;
  pauseDuringVacuum: boolean;
  maxLockWaiters: number | null;
  maxSlowdown: number | null;
  maxRowsPerSecond: number | null;
  maxBytesPerSecond: number | null;
  /**
   * Milliseconds of rest after each millisecond of batch work (gh-ost's nice-ratio). Absent
   * from readings recorded before it existed, which therefore replay without it.
   */
  niceRatio?: number | null;
  /**
   * The impact budget (docs/performance-tuning.md): the archiver rests while the database's
   * probe takes more than this many times its baseline, or while more than
   * `maxActiveSessions` other sessions are active. Absent from older readings: no controller.
   */
  maxProbeSlowdown?: number | null;
  maxActiveSessions?: number | null;
  /** Most rest, per millisecond of batch work, the controller gives (its ratio's ceiling). */
  maxRestRatio?: number;
  /** First wait when a database signal is over its limit; doubles while it stays over. */
  pauseMs: number;
  maxPauseMs: number;
  /** Batch size adapts toward this batch duration, between minBatchSize and batch_size. */
  targetBatchMs: number | null;
  minBatchSize: number;
}

/** What the database says right now. Null: not measurable here (no replica, no privilege). */
export interface ThrottleSignals {
  replicaLagMs: number | null;
  /** WAL segments waiting for archive_command (`.ready` files). */
  walReadyFiles: number | null;
  /** pg_stat_archiver's last failure is newer than its last success. */
  walArchiverFailing: boolean;
  /** A (auto)vacuum is working on the table being archived. */
  vacuumRunning: boolean;
  /** Sessions of this database waiting for a lock, other than the reader's own. */
  lockWaiters: number;
  /**
   * How long a trivial statement's round trip took a client of the database over the last
   * 2 s, in ms (the 90th percentile of one every 50 ms, src/postgres/latency-probe.ts): it
   * slows down as every other client's short statements do. Null when it could not be
   * timed; absent from readings recorded before it existed.
   */
  probeMs?: number | null;
  /** Sessions of this database running a statement, other than the archiver's own. */
  activeSessions?: number | null;
}

export interface ThrottleReading {
  limits: ThrottleLimits;
  signals: ThrottleSignals;
}

/** The last batch as the workflow saw it. */
export interface BatchTiming {
  rows: number;
  bytes: number;
  /** Export to delete, the archiver's own statements: compared with the baseline. */
  workMs: number;
  /** From the batch's start to now, pauses included: what a rate ceiling is measured over. */
  elapsedMs: number;
  /** Whether the batch was full (a partial one carries fixed costs over fewer rows). */
  full: boolean;
}

/** Carried across batches and continue-as-new in the workflow's state. */
export interface ThrottleState {
  /** Running average of work milliseconds per row of full batches; null until the first. */
  baselineMsPerRow: number | null;
  batchSize: number;
  /** Signal pauses in a row: each doubles the next wait, up to maxPauseMs. */
  consecutivePauses: number;
  /**
   * The impact controller's rest per ms of work (0: full speed), and the probe time it
   * judges against: the fastest probe seen, let up slowly so one lucky probe is forgotten.
   * Absent from states recorded before the controller existed.
   */
  restRatio?: number;
  probeBaselineMs?: number | null;
}

export type ThrottleSignalName =
  | 'replica lag'
  | 'wal archive backlog'
  | 'autovacuum'
  | 'lock waits'
  | 'statement slowdown'
  | 'rows per second'
  | 'bytes per second'
  | 'nice ratio'
  | 'database impact';

/** Limits on the archiver's own pace: their waits are exact and never grow. */
const PACING: readonly ThrottleSignalName[] = [
  'rows per second',
  'bytes per second',
  'nice ratio',
  'database impact',
];

export type ThrottleDecision =
  { pause: false } | { pause: true; ms: number; by: ThrottleSignalName[]; reason: string };

/** Weight of the newest batch in the running baseline. */
const BASELINE_WEIGHT = 0.2;

export function initialThrottleState(batchSize: number): ThrottleState {
  return { baselineMsPerRow: null, batchSize, consecutivePauses: 0 };
}

/** A reading over its limit; no limit, or no reading, is never over. */
const exceeds = (value: number | null, limit: number | null): boolean =>
  limit !== null && value !== null && value > limit;

/**
 * Go or wait. Database signals over their limit wait `pauseMs`, doubling while they stay
 * over; the rate ceilings wait exactly long enough that the last batch's rows and bytes,
 * spread over its elapsed time plus the wait, stay under the ceiling; the nice ratio waits
 * until the rest since the last batch is `niceRatio` times its work (at most `maxPauseMs`).
 * The longest wait wins.
 */
export function decideThrottle(
  limits: ThrottleLimits,
  signals: ThrottleSignals,
  last: BatchTiming | null,
  state: ThrottleState,
): ThrottleDecision {
  const by: ThrottleSignalName[] = [];
  const why: string[] = [];
  const over = (name: ThrottleSignalName, text: string) => {
    by.push(name);
    why.push(text);
  };
  if (exceeds(signals.replicaLagMs, limits.maxReplicaLagMs)) {
    over(
      'replica lag',
      `replica replay lag ${signals.replicaLagMs} ms > ${limits.maxReplicaLagMs} ms`,
    );
  }
  if (exceeds(signals.walReadyFiles, limits.maxWalReadyFiles)) {
    over(
      'wal archive backlog',
      `${signals.walReadyFiles} WAL files waiting to be archived > ${limits.maxWalReadyFiles}`,
    );
  } else if (limits.maxWalReadyFiles !== null && signals.walArchiverFailing) {
    over('wal archive backlog', 'the WAL archiver is failing (pg_stat_archiver)');
  }
  if (limits.pauseDuringVacuum && signals.vacuumRunning) {
    over('autovacuum', 'a vacuum is running on the table');
  }
  if (exceeds(signals.lockWaiters, limits.maxLockWaiters)) {
    over(
      'lock waits',
      `${signals.lockWaiters} sessions waiting for locks > ${limits.maxLockWaiters}`,
    );
  }
  const slowdown = last ? slowdownOf(last, state) : null;
  if (slowdown !== null && exceeds(slowdown, limits.maxSlowdown)) {
    over(
      'statement slowdown',
      `the last batch took ${slowdown.toFixed(1)}x its usual time per row > ${limits.maxSlowdown}x`,
    );
  }
  let ms = 0;
  if (by.length > 0) {
    ms = Math.min(limits.pauseMs * 2 ** state.consecutivePauses, limits.maxPauseMs);
  }
  if (last) {
    const rate = (
      name: ThrottleSignalName,
      amount: number,
      ceiling: number | null,
      unit: string,
    ) => {
      if (ceiling === null) return;
      const wait = Math.ceil((amount / ceiling) * 1000 - last.elapsedMs);
      if (wait <= 0) return;
      over(name, `${amount} ${unit} in ${last.elapsedMs} ms is over ${ceiling} ${unit}/s`);
      ms = Math.max(ms, wait);
    };
    rate('rows per second', last.rows, limits.maxRowsPerSecond, 'rows');
    rate('bytes per second', last.bytes, limits.maxBytesPerSecond, 'bytes');
    const rest = (name: ThrottleSignalName, ratio: number, why: string) => {
      // Capped: a batch stretched by a worker's crash and retry would otherwise rest for hours.
      const restMs = Math.min(Math.ceil(last.workMs * ratio), limits.maxPauseMs);
      const wait = restMs - (last.elapsedMs - last.workMs);
      if (wait <= 0) return;
      over(name, `the last batch worked ${last.workMs} ms; ${why} rests ${restMs} ms after it`);
      ms = Math.max(ms, wait);
    };
    const steered = state.restRatio ?? 0;
    if (limits.niceRatio && limits.niceRatio >= steered) {
      rest('nice ratio', limits.niceRatio, `nice_ratio ${limits.niceRatio}`);
    } else if (steered > 0) {
      rest('database impact', steered, `the impact controller's ratio ${steered}`);
    }
  }
  if (by.length === 0) return { pause: false };
  return { pause: true, ms, by, reason: why.join('; ') };
}

/**
 * Whether the archiver rests after every batch (a nice ratio, a rate ceiling, or the impact
 * controller's rest), not only while a database signal is over its limit.
 */
export function restsAfterBatches(limits: ThrottleLimits, state: ThrottleState): boolean {
  return (
    Boolean(limits.niceRatio) ||
    Boolean(state.restRatio) ||
    limits.maxRowsPerSecond !== null ||
    limits.maxBytesPerSecond !== null
  );
}

/** Probes faster than this apart from the baseline are noise, whatever their ratio. */
const PROBE_NOISE_MS = 0.5;
/** How much the probe baseline lets up per reading: a probe faster than all others is forgotten. */
const BASELINE_LETUP = 1.02;
/** The controller's first rest, per ms of work, once the database shows the archive's impact. */
const FIRST_REST_RATIO = 1;

/**
 * Whether the database is over the impact budget in this reading: its probe slower than
 * `maxProbeSlowdown` times the baseline (and by more than noise), or more other sessions
 * active than `maxActiveSessions`. Null when the reading cannot tell (no probe, no limits).
 */
function overBudget(
  limits: ThrottleLimits,
  signals: ThrottleSignals,
  baselineMs: number | null,
): string | null {
  const { probeMs, activeSessions } = signals;
  const slowdown = limits.maxProbeSlowdown ?? null;
  if (slowdown !== null && probeMs != null && baselineMs !== null) {
    if (probeMs > baselineMs * slowdown && probeMs - baselineMs > PROBE_NOISE_MS)
      return `a probe took ${probeMs.toFixed(1)} ms, ${(probeMs / baselineMs).toFixed(1)}x its baseline`;
  }
  if (exceeds(activeSessions ?? null, limits.maxActiveSessions ?? null))
    return `${activeSessions} other sessions active > ${limits.maxActiveSessions}`;
  return null;
}

/**
 * The impact controller (docs/performance-tuning.md), after each reading that follows a
 * batch: over the budget, the rest per ms of work starts at 1 and doubles, up to
 * `maxRestRatio`; within it, it halves, and below a quarter it is gone, so an idle database
 * gets the archive at full speed and a busy one gets room within one batch. The probe's
 * baseline is the fastest probe seen, let up 2% a reading. A reading without a probe (older
 * histories, a database that cannot be probed) changes nothing.
 */
export function steerImpact(
  limits: ThrottleLimits,
  signals: ThrottleSignals,
  state: ThrottleState,
  afterABatch: boolean,
): { state: ThrottleState; over: string | null } {
  const probe = signals.probeMs ?? null;
  if (probe === null || (limits.maxProbeSlowdown == null && limits.maxActiveSessions == null))
    return { state, over: null };
  const previous = state.probeBaselineMs ?? null;
  const over = overBudget(limits, signals, previous);
  const baseline = previous === null ? probe : Math.min(probe, previous * BASELINE_LETUP);
  let ratio = state.restRatio ?? 0;
  if (afterABatch) {
    const ceiling = limits.maxRestRatio ?? 0;
    if (over) ratio = Math.min(ratio === 0 ? FIRST_REST_RATIO : ratio * 2, ceiling);
    else ratio = ratio / 2 < FIRST_REST_RATIO / 4 ? 0 : ratio / 2;
  }
  return { state: { ...state, restRatio: ratio, probeBaselineMs: baseline }, over };
}

/** How many times slower per row the last batch was than the running baseline. */
function slowdownOf(last: BatchTiming, state: ThrottleState): number | null {
  if (!last.full || last.rows === 0 || state.baselineMsPerRow === null) return null;
  if (state.baselineMsPerRow <= 0) return null;
  return last.workMs / last.rows / state.baselineMsPerRow;
}

/**
 * The state after a batch: the baseline learns from full batches only, and the batch size
 * moves toward the target duration (at most x2 or /2 a step, within its bounds).
 */
export function afterBatch(
  limits: ThrottleLimits,
  maxBatchSize: number,
  last: BatchTiming,
  state: ThrottleState,
): ThrottleState {
  let baseline = state.baselineMsPerRow;
  if (last.full && last.rows > 0) {
    const msPerRow = last.workMs / last.rows;
    baseline =
      baseline === null ? msPerRow : baseline * (1 - BASELINE_WEIGHT) + msPerRow * BASELINE_WEIGHT;
  }
  let batchSize = Math.min(state.batchSize, maxBatchSize);
  if (limits.targetBatchMs !== null && last.full && last.workMs > 0) {
    const scaled = (batchSize * limits.targetBatchMs) / last.workMs;
    const stepped = Math.min(Math.max(scaled, batchSize / 2), batchSize * 2);
    batchSize = Math.round(Math.min(Math.max(stepped, limits.minBatchSize), maxBatchSize));
  }
  return { ...state, baselineMsPerRow: baseline, batchSize };
}

/** Whether a wait is only the archiver's own pacing (a rest), no database signal over its limit. */
export function onlyPacing(decision: ThrottleDecision): boolean {
  return decision.pause && decision.by.every((b) => PACING.includes(b));
}

/** Pacing waits an exact amount; only database signals make the next wait longer. */
export function nextConsecutivePauses(decision: ThrottleDecision, state: ThrottleState): number {
  if (!decision.pause) return 0;
  return onlyPacing(decision) ? state.consecutivePauses : state.consecutivePauses + 1;
}

/** Input of the readThrottleSignals activity. */
export interface ReadThrottleSignalsInput {
  table: ResolvedTableRef;
  /**
   * The pause between batches, waited inside the activity before reading: a short pause
   * then costs no timer and no extra workflow task (see ArchiveTable).
   */
  waitMs?: number;
}
