import { proxySinks, workflowInfo } from '@temporalio/workflow';
import type {
  ArchiverMetricsSinks,
  RunEndEvent,
  ThrottleWaitEvent,
} from '../src/shared/metrics-sink';

/**
 * Events for the worker's /metrics (src/metrics.ts), sent through a sink: no command in the
 * history, so no patch. Skipped while replaying (as the SDK's own workflow metrics are), so a
 * replayed history counts nothing twice.
 */
const { archiverMetrics } = proxySinks<ArchiverMetricsSinks>();

export function countThrottleWait(event: ThrottleWaitEvent): void {
  if (!workflowInfo().unsafe.isReplaying) archiverMetrics.throttled(event);
}

export function countRunEnd(event: RunEndEvent): void {
  if (!workflowInfo().unsafe.isReplaying) archiverMetrics.runEnded(event);
}
