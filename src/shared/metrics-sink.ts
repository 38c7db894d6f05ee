import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure } from '@temporalio/common';
import type { Sinks } from '@temporalio/workflow';

/**
 * What workflows tell the worker's /metrics (src/metrics.ts) through a sink: events only a
 * workflow sees (a throttle wait, a run's end). A sink call is no command in the history,
 * and the SDK does not call it on replay, so each event is counted once, by the worker that
 * ran it.
 */
export interface ArchiverMetricsSinks extends Sinks {
  archiverMetrics: {
    /** A wait before a batch because throttling named `signal` (the first it named). */
    throttled(event: ThrottleWaitEvent): void;
    /** The end of an ArchiveTable run (the last run of a continue-as-new chain). */
    runEnded(event: RunEndEvent): void;
  };
}

export interface ThrottleWaitEvent {
  database: string;
  schema: string;
  table: string;
  /** A ThrottleSignalName (src/shared/throttle.ts). */
  signal: string;
  ms: number;
}

/** A run's end as metrics count it. */
export interface RunEndEvent {
  database: string;
  schema: string;
  table: string;
  /**
   * How the run ended: the ArchiveOutcome search attribute's value (archived,
   * nothing-to-archive, locked, dry-run, failed, cancelled).
   */
  outcome: string;
  /** For `failed`: the failure's type (the error class name the SDK recorded). */
  errorType?: string;
}

/** Outcomes that count as a table's successful run (its last-success time). */
export const SUCCESSFUL_OUTCOMES: readonly string[] = ['archived', 'nothing-to-archive'];

/**
 * The type of the failure a run ended with, bounded: the ApplicationFailure type the activity
 * or workflow threw (the error class name), else the failure's own class name.
 */
export function failureType(err: unknown): string {
  let failure: unknown = err;
  if (failure instanceof ActivityFailure || failure instanceof ChildWorkflowFailure)
    failure = failure.cause ?? failure;
  const type =
    failure instanceof ApplicationFailure && failure.type
      ? failure.type
      : failure instanceof Error
        ? failure.constructor.name
        : 'NonError';
  return type.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 64) || 'Error';
}
