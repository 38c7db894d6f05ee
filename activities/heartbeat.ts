import { activityInfo, heartbeat } from '@temporalio/activity';

/** How often activities heartbeat, whatever they are waiting on. */
const HEARTBEAT_EVERY_MS = 2_000;

/** The details each running activity attempt heartbeats, by its task token. */
const running = new Map<string, { details: Record<string, unknown> }>();

/**
 * Runs `fn` while heartbeating on a timer, not only when work moves: an attempt that the
 * server has given up on (its heartbeat timed out, a retry runs elsewhere) learns it from
 * the next heartbeat's answer, and its cancellation signal fires before it writes anything,
 * wherever it was waiting (a catalog read, a day search, a listing, a stalled reply); and an
 * attempt stuck on a frozen worker is given up on within its heartbeat timeout, not its
 * start-to-close timeout. `fn` may set the details each heartbeat carries. Nested calls in
 * one attempt share its one timer.
 */
export async function heartbeating<T>(
  fn: (details: (value: Record<string, unknown>) => void) => Promise<T>,
): Promise<T> {
  const key = Buffer.from(activityInfo().taskToken).toString('base64');
  const outer = running.get(key);
  if (outer) return fn((value) => (outer.details = value));
  const state = { details: {} as Record<string, unknown> };
  running.set(key, state);
  const beat = setInterval(() => heartbeat(state.details), HEARTBEAT_EVERY_MS);
  heartbeat(state.details);
  try {
    return await fn((value) => (state.details = value));
  } finally {
    clearInterval(beat);
    running.delete(key);
  }
}

/** The id of the workflow that runs this activity (or a label for a lone test activity). */
export function workflowIdOfActivity(): string {
  const info = activityInfo();
  return info.workflowExecution?.workflowId ?? `activity ${info.activityId}`;
}
