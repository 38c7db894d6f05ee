import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  proxyActivities,
  setHandler,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { LockHolder } from '../src/shared/archive-types';
import type { ResolvedTableRef } from '../src/shared/table-ref';
import { LOCK, LOCK_HEARTBEAT_MS, SHORT_IO } from './activity-options';
import { lockGrantedSignal } from './messages';
import type { Patience } from './patience';

const { holdTableLock } = proxyActivities<Activities>(LOCK);
const { releaseTableLock } = proxyActivities<Activities>(SHORT_IO);

type LockState =
  | { state: 'none' }
  | { state: 'waiting' }
  | { state: 'held'; holder: LockHolder }
  | { state: 'busy'; heldBy: string }
  | { state: 'lost'; error: unknown };

/**
 * The table's lock (one writer per table), as seen from a run: held by a long-running
 * activity on a dedicated database session, which signals once it holds the lock. If that
 * activity ends while the run holds the lock (its worker died or froze, its session was
 * ended), the lock is lost: the next `holder()` takes it again, and the delete itself checks
 * in the database that this run's session holds it. Faults while taking it are waited out.
 */
export class TableLock {
  private lock: LockState = { state: 'none' };
  private scope: CancellationScope | undefined;
  private running: Promise<void> | undefined;
  /** Counts acquisitions: whatever a run read under an earlier one may have changed since. */
  generation = 0;

  constructor(
    private readonly ref: ResolvedTableRef,
    /** Stable for the whole run (its first run id), so an abandoned session of it is recognised. */
    private readonly owner: string,
    private readonly patience: Patience,
  ) {
    setHandler(lockGrantedSignal, (holder) => {
      if (this.lock.state === 'waiting') this.lock = { state: 'held', holder };
    });
  }

  /** Takes the lock, waiting out faults; `busy` names the other run's session holding it. */
  async acquire(): Promise<{ held: true } | { held: false; heldBy: string }> {
    const settled = await this.patience.run('take the table lock', async () => {
      const outcome = await this.tryAcquire();
      if (outcome.state !== 'lost') return outcome;
      await this.release();
      throw outcome.error;
    });
    if (settled.state === 'busy') return { held: false, heldBy: settled.heldBy };
    this.generation++;
    return { held: true };
  }

  /** The session holding the lock, taking the lock again if it was lost. */
  async holder(): Promise<LockHolder> {
    if (this.lock.state !== 'held') {
      await this.release();
      const again = await this.acquire();
      if (!again.held) {
        throw ApplicationFailure.nonRetryable(
          `the table lock was lost and is now held by ${again.heldBy}`,
          'LockLostError',
        );
      }
    }
    if (this.lock.state !== 'held')
      throw ApplicationFailure.nonRetryable('table lock not held', 'LockLostError');
    return this.lock.holder;
  }

  /** The database says this run's lock session is gone: the next holder() takes it again. */
  forget(): void {
    if (this.lock.state === 'held') this.lock = { state: 'lost', error: undefined };
  }

  async release(): Promise<void> {
    if (this.lock.state === 'held') {
      // Ask the holder session to let go now; cancelling alone waits for a heartbeat.
      const holder = this.lock.holder;
      await releaseTableLock({ table: this.ref, holder }).catch(() => undefined);
    }
    this.scope?.cancel();
    await this.running;
    this.scope = undefined;
    this.running = undefined;
    this.lock = { state: 'none' };
  }

  private async tryAcquire(): Promise<LockState> {
    this.lock = { state: 'waiting' };
    const scope = new CancellationScope();
    this.scope = scope;
    this.running = scope
      .run(() =>
        holdTableLock({ table: this.ref, heartbeatMs: LOCK_HEARTBEAT_MS, owner: this.owner }),
      )
      .then(
        (result) => {
          this.lock = result.acquired
            ? { state: 'none' }
            : { state: 'busy', heldBy: result.heldBy };
        },
        (err: unknown) => {
          this.lock = isCancellation(err) ? { state: 'none' } : { state: 'lost', error: err };
        },
      );
    await condition(() => this.lock.state !== 'waiting');
    return this.lock;
  }
}

/** Whether a delete failed because this run's lock session is gone (nothing was deleted). */
export function isLockLost(err: unknown): boolean {
  return (
    err instanceof ActivityFailure &&
    err.cause instanceof ApplicationFailure &&
    err.cause.type === 'LockLostError'
  );
}
