import { activityInfo, heartbeat } from '@temporalio/activity';

/** How often long activities heartbeat, whatever they are waiting on. */
const HEARTBEAT_EVERY_MS = 2_000;

/**
 * Runs `fn` while heartbeating on a timer, not only when work moves: an attempt that the
 * server has given up on (its heartbeat timed out, a retry runs elsewhere) learns it from
 * the next heartbeat's answer, and its cancellation signal fires before it writes anything,
 * wherever it was waiting (a catalog read, a day search, a listing, a stalled reply). `fn`
 * may pass the details each heartbeat carries.
 */
export async function heartbeating<T>(
  fn: (details: (value: Record<string, unknown>) => void) => Promise<T>,
): Promise<T> {
  let details: Record<string, unknown> = {};
  const beat = setInterval(() => heartbeat(details), HEARTBEAT_EVERY_MS);
  heartbeat(details);
  try {
    return await fn((value) => {
      details = value;
    });
  } finally {
    clearInterval(beat);
  }
}

/** The id of the workflow that runs this activity (or a label for a lone test activity). */
export function workflowIdOfActivity(): string {
  const info = activityInfo();
  return info.workflowExecution?.workflowId ?? `activity ${info.activityId}`;
}
