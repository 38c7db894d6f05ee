import assert from 'node:assert/strict';
import {
  afterBatch,
  decideThrottle,
  initialThrottleState,
  nextConsecutivePauses,
  restsAfterBatches,
  steerImpact,
  type BatchTiming,
  type ThrottleLimits,
  type ThrottleSignals,
} from '../../src/shared/throttle';

const limits: ThrottleLimits = {
  maxReplicaLagMs: 10_000,
  maxWalReadyFiles: 64,
  pauseDuringVacuum: true,
  maxLockWaiters: 5,
  maxSlowdown: 3,
  maxRowsPerSecond: null,
  maxBytesPerSecond: null,
  pauseMs: 5_000,
  maxPauseMs: 60_000,
  targetBatchMs: null,
  minBatchSize: 100,
};
const calm: ThrottleSignals = {
  replicaLagMs: null,
  walReadyFiles: 0,
  walArchiverFailing: false,
  vacuumRunning: false,
  lockWaiters: 0,
};
const batch = (over: Partial<BatchTiming> = {}): BatchTiming => ({
  rows: 1000,
  bytes: 100_000,
  workMs: 1000,
  elapsedMs: 1000,
  full: true,
  ...over,
});
const state = initialThrottleState(1000);

describe('throttle decision (pure)', () => {
  it('goes when every signal is under its limit', () => {
    assert.deepEqual(decideThrottle(limits, calm, batch(), state), { pause: false });
  });

  const cases: [string, Partial<ThrottleSignals>][] = [
    ['replica lag', { replicaLagMs: 10_001 }],
    ['wal archive backlog', { walReadyFiles: 65 }],
    ['wal archive backlog', { walArchiverFailing: true }],
    ['autovacuum', { vacuumRunning: true }],
    ['lock waits', { lockWaiters: 6 }],
  ];
  for (const [name, signal] of cases) {
    it(`pauses for ${name} when ${JSON.stringify(signal)} passes its limit, and names it`, () => {
      const d = decideThrottle(limits, { ...calm, ...signal }, null, state);
      assert.ok(d.pause);
      assert.deepEqual(d.by, [name]);
      assert.equal(d.ms, 5_000);
      assert.ok(d.reason.length > 0);
    });
  }

  it('ignores a signal whose limit is null (off) or that cannot be measured', () => {
    const off = {
      ...limits,
      maxReplicaLagMs: null,
      maxLockWaiters: null,
      pauseDuringVacuum: false,
    };
    const busy = { ...calm, replicaLagMs: 99_999, lockWaiters: 99, vacuumRunning: true };
    assert.deepEqual(decideThrottle(off, busy, null, state), { pause: false });
    assert.deepEqual(decideThrottle(limits, { ...calm, walReadyFiles: null }, null, state), {
      pause: false,
    });
  });

  it('doubles the wait while a signal stays over its limit, up to max_pause_ms', () => {
    const lag = { ...calm, replicaLagMs: 20_000 };
    const waits = [0, 1, 2, 3, 4, 5].map((n) => {
      const d = decideThrottle(limits, lag, null, { ...state, consecutivePauses: n });
      return d.pause ? d.ms : 0;
    });
    assert.deepEqual(waits, [5_000, 10_000, 20_000, 40_000, 60_000, 60_000]);
  });

  it('pauses when the last full batch took more than max_slowdown times its baseline per row', () => {
    const learned = { ...state, baselineMsPerRow: 1 };
    const slow = decideThrottle(limits, calm, batch({ workMs: 3_500 }), learned);
    assert.ok(slow.pause);
    assert.deepEqual(slow.by, ['statement slowdown']);
    assert.deepEqual(decideThrottle(limits, calm, batch({ workMs: 2_900 }), learned), {
      pause: false,
    });
    // A partial batch (the end of a day) carries fixed costs over few rows: not judged.
    assert.deepEqual(
      decideThrottle(limits, calm, batch({ rows: 10, workMs: 3_500, full: false }), learned),
      { pause: false },
    );
  });

  it('waits exactly long enough to keep rows and bytes per second under their ceilings', () => {
    const ceiling = { ...limits, maxRowsPerSecond: 500, maxBytesPerSecond: 25_000 };
    // 1000 rows at 500/s need 2 s; 100,000 bytes at 25,000/s need 4 s; 1 s has passed.
    const d = decideThrottle(ceiling, calm, batch(), state);
    assert.ok(d.pause);
    assert.deepEqual(d.by, ['rows per second', 'bytes per second']);
    assert.equal(d.ms, 3_000);
    assert.equal(nextConsecutivePauses(d, state), 0, 'a rate wait does not grow the next one');
  });

  it('rests nice_ratio times the last batch’s work, counting the pause already waited', () => {
    const nice = { ...limits, niceRatio: 4 };
    // 1 s of work wants 4 s of rest; 1.5 s have passed since the batch ended.
    const d = decideThrottle(nice, calm, batch({ workMs: 1000, elapsedMs: 2500 }), state);
    assert.ok(d.pause);
    assert.deepEqual(d.by, ['nice ratio']);
    assert.equal(d.ms, 2_500);
    assert.match(d.reason, /worked 1000 ms; nice_ratio 4 rests 4000 ms/);
    assert.equal(nextConsecutivePauses(d, state), 0, 'pacing does not grow the next wait');
    // A batch stretched by a crash and a retry rests at most max_pause_ms.
    const stretched = decideThrottle(
      nice,
      calm,
      batch({ workMs: 600_000, elapsedMs: 600_000 }),
      state,
    );
    assert.ok(stretched.pause);
    assert.equal(stretched.ms, limits.maxPauseMs);
    // Rested enough already, no ratio, or a ratio of 0: go.
    assert.deepEqual(decideThrottle(nice, calm, batch({ elapsedMs: 5000 }), state), {
      pause: false,
    });
    assert.deepEqual(decideThrottle({ ...limits, niceRatio: 0 }, calm, batch(), state), {
      pause: false,
    });
    // A reading recorded before the ratio existed has no such key and replays without it.
    const recorded: ThrottleLimits = { ...nice };
    delete recorded.niceRatio;
    assert.deepEqual(decideThrottle(recorded, calm, batch(), state), { pause: false });
  });

  it('learns the baseline from full batches only', () => {
    const first = afterBatch(limits, 1000, batch({ workMs: 2000 }), state);
    assert.equal(first.baselineMsPerRow, 2);
    const partial = afterBatch(limits, 1000, batch({ rows: 5, workMs: 900, full: false }), first);
    assert.equal(partial.baselineMsPerRow, 2);
    const next = afterBatch(limits, 1000, batch({ workMs: 1000 }), first);
    assert.ok(Math.abs(next.baselineMsPerRow! - 1.8) < 1e-9);
  });

  it('adapts the batch size toward target_batch_ms, at most x2 a step, within its bounds', () => {
    const target = { ...limits, targetBatchMs: 500, minBatchSize: 300 };
    assert.equal(afterBatch(target, 1000, batch({ workMs: 1000 }), state).batchSize, 500);
    assert.equal(afterBatch(target, 1000, batch({ workMs: 5000 }), state).batchSize, 500);
    const small = { ...state, batchSize: 400 };
    assert.equal(afterBatch(target, 1000, batch({ rows: 400, workMs: 100 }), small).batchSize, 800);
    assert.equal(
      afterBatch(target, 1000, batch({ rows: 800, workMs: 100 }), { ...state, batchSize: 800 })
        .batchSize,
      1000,
    );
    assert.equal(
      afterBatch(target, 1000, batch({ rows: 400, workMs: 5000 }), small).batchSize,
      300,
    );
    assert.equal(afterBatch(limits, 1000, batch({ workMs: 5000 }), state).batchSize, 1000);
  });

  describe('impact controller', () => {
    const budget = { ...limits, maxProbeSlowdown: 1.5, maxActiveSessions: 8, maxRestRatio: 16 };
    /** Readings with these probe times, each after a batch, from a fresh state. */
    const steer = (probes: number[], signals: Partial<ThrottleSignals> = {}) => {
      let current = state;
      const ratios: number[] = [];
      for (const [i, probeMs] of probes.entries()) {
        current = steerImpact(budget, { ...calm, ...signals, probeMs }, current, i > 0).state;
        ratios.push(current.restRatio ?? 0);
      }
      return { ratios, state: current };
    };

    it('runs at full speed while the probe stays near its baseline', () => {
      // The first reading (before any batch) is the baseline; 1.4x or a noise-sized step is within.
      assert.deepEqual(steer([1, 1.4, 1.2, 1, 1.1]).ratios, [0, 0, 0, 0, 0]);
      assert.deepEqual(steer([0.1, 0.3, 0.34]).ratios, [0, 0, 0], '0.24 ms is noise');
    });

    it('rests 1 ms per ms of work once the probe is over budget, doubling up to max_rest_ratio, and halving back to none', () => {
      const { ratios } = steer([1, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1]);
      assert.deepEqual(ratios, [0, 1, 2, 4, 8, 16, 16, 8, 4, 2, 1, 0.5, 0.25, 0]);
    });

    it('rests while more other sessions are active than max_active_sessions', () => {
      assert.deepEqual(steer([1, 1, 1], { activeSessions: 9 }).ratios, [0, 1, 2]);
      assert.deepEqual(steer([1, 1, 1], { activeSessions: 8 }).ratios, [0, 0, 0]);
    });

    it('forgets a probe faster than all others, letting the baseline up 2% a reading', () => {
      const { state: after } = steer([0.5, ...Array<number>(40).fill(1)]);
      assert.ok(
        after.probeBaselineMs! > 0.99 && after.probeBaselineMs! <= 1,
        `${after.probeBaselineMs}`,
      );
      assert.equal(after.restRatio, 0, 'no rest once the baseline caught up and the ratio decayed');
    });

    it('rests its ratio times the last batch’s work, as a pacing wait that does not grow, and names it', () => {
      const steered = { ...state, restRatio: 4, probeBaselineMs: 1 };
      const d = decideThrottle(budget, calm, batch({ workMs: 1000, elapsedMs: 1000 }), steered);
      assert.ok(d.pause);
      assert.deepEqual(d.by, ['database impact']);
      assert.equal(d.ms, 4_000);
      assert.equal(nextConsecutivePauses(d, steered), 0);
      assert.ok(restsAfterBatches(budget, steered));
      assert.ok(!restsAfterBatches(budget, { ...steered, restRatio: 0 }));
      // nice_ratio is a floor the controller cannot go under: the larger rest wins.
      const capped = decideThrottle({ ...budget, niceRatio: 9 }, calm, batch(), steered);
      assert.ok(capped.pause);
      assert.deepEqual([capped.by, capped.ms], [['nice ratio'], 9_000]);
    });

    it('changes nothing for a reading without a probe (older histories) or with the budget off', () => {
      const noProbe = steerImpact(budget, calm, state, true);
      assert.equal(noProbe.state, state);
      const off = { ...limits, maxProbeSlowdown: null, maxActiveSessions: null };
      assert.equal(steerImpact(off, { ...calm, probeMs: 9 }, state, true).state, state);
    });
  });
});
