import type { WorkflowHandle } from '@temporalio/client';

const POLL_MS = 1_000;
const QUERY_DEADLINE_MS = 3_000;

/**
 * Follows a started workflow until it ends: asks `poll` for output every second (it reads
 * the workflow's progress, and its children's, with `queryQuietly`), and returns the
 * workflow's result, or throws its failure. What finished after the last poll is the
 * caller's to print from the result.
 */
export async function followWorkflow<R>(
  handle: WorkflowHandle,
  poll: () => Promise<void>,
): Promise<R> {
  let done = false;
  const result = (handle.result() as Promise<R>).finally(() => (done = true));
  while (!done) {
    await poll();
    await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, POLL_MS))]);
  }
  return result;
}

/**
 * A workflow's `progress` query, or undefined when it does not answer within a few seconds
 * (not started yet, or no worker to answer): the next poll tries again.
 */
export async function queryQuietly<T>(handle: WorkflowHandle): Promise<T | undefined> {
  try {
    return await handle.client.connection.withDeadline(Date.now() + QUERY_DEADLINE_MS, () =>
      handle.query<T>('progress'),
    );
  } catch {
    return undefined;
  }
}
