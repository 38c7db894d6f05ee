import {
  Client,
  Connection,
  WorkflowExecutionAlreadyStartedError,
  type WorkflowHandle,
} from '@temporalio/client';
import { errorText, sleep, waitUntil } from './util';

/** How a workflow run ended, as seen from outside, or that it did not end in time. */
export type RunStatus = 'COMPLETED' | 'FAILED' | 'TERMINATED' | 'TIMED_OUT' | 'CANCELLED' | 'STUCK';

export interface RunOutcome<T> {
  workflowId: string;
  status: RunStatus;
  result?: T;
  /** Why it failed (the cause chain), or what it was waiting for when it got stuck. */
  failure?: string;
  ms: number;
}

/**
 * The harness's Temporal client: starts the product's workflows by name, as a schedule or
 * `temporal workflow start` would, and follows them by polling, so that a Temporal restart
 * in the middle only delays the answer. Every wait has a deadline.
 */
export class Orchestrator {
  private client: Client | undefined;

  constructor(
    private readonly address: string,
    readonly taskQueue: string,
  ) {}

  private async connect(): Promise<Client> {
    if (this.client) return this.client;
    const connection = await waitUntil('a connection to Temporal', 90_000, () =>
      Connection.connect({ address: this.address, connectTimeout: 2_000 }),
    );
    this.client = new Client({ connection, namespace: 'default' });
    return this.client;
  }

  async close(): Promise<void> {
    await this.client?.connection.close().catch(() => undefined);
    this.client = undefined;
  }

  /**
   * Starts a workflow. A start whose reply was lost (Temporal restarting) is retried; if the
   * retry finds the id taken, the first attempt did start it, since the harness starts a
   * workflow id only when no run of it is open.
   */
  async start(type: string, workflowId: string, args: unknown[]): Promise<WorkflowHandle> {
    const client = await this.connect();
    return waitUntil(`Temporal to start ${workflowId}`, 90_000, async () => {
      try {
        return await client.workflow.start(type, { taskQueue: this.taskQueue, workflowId, args });
      } catch (err) {
        if (err instanceof WorkflowExecutionAlreadyStartedError)
          return client.workflow.getHandle(workflowId);
        throw err;
      }
    });
  }

  /** The open run of a workflow id, if any (after a harness restart, say). */
  async isOpen(workflowId: string): Promise<boolean> {
    const client = await this.connect();
    try {
      const d = await client.workflow.getHandle(workflowId).describe();
      return d.status.name === 'RUNNING';
    } catch {
      return false;
    }
  }

  /**
   * Follows a run to its end. `deadline()` is read on every poll, so the caller can extend
   * it (a fault phase that goes on). Past the deadline the run is STUCK: what it waits for is
   * described, and it is terminated so that the next cycle starts clean.
   */
  async follow<T>(
    handle: WorkflowHandle,
    deadline: () => number,
    onPoll?: (pending: string) => void,
  ): Promise<RunOutcome<T>> {
    const started = Date.now();
    const base = { workflowId: handle.workflowId };
    for (;;) {
      let status: string | undefined;
      try {
        const description = await handle.describe();
        status = description.status.name;
        if (status === 'RUNNING' || status === 'CONTINUED_AS_NEW')
          onPoll?.(pendingText(description.raw));
      } catch {
        // Temporal restarting: ask again
      }
      if (status !== undefined && status !== 'RUNNING' && status !== 'CONTINUED_AS_NEW') break;
      if (Date.now() > deadline()) {
        const pending = await this.pending(handle);
        await handle.terminate('chaos harness: the run passed its deadline').catch(() => undefined);
        return { ...base, status: 'STUCK', failure: pending, ms: Date.now() - started };
      }
      await sleep(1_000);
    }
    // Closed: read the result (or failure) from the history, retrying through restarts.
    for (let attempt = 1; ; attempt++) {
      try {
        const result = (await handle.result()) as T;
        return { ...base, status: 'COMPLETED', result, ms: Date.now() - started };
      } catch (err) {
        const status = await handle
          .describe()
          .then((d) => d.status.name)
          .catch(() => undefined);
        if (status !== undefined && status !== 'COMPLETED' && status !== 'RUNNING') {
          return {
            ...base,
            status: (['FAILED', 'TERMINATED', 'TIMED_OUT', 'CANCELLED'].includes(status)
              ? status
              : 'FAILED') as RunStatus,
            failure: errorText(err),
            ms: Date.now() - started,
          };
        }
        if (attempt >= 60)
          throw new Error(`could not read the result of ${handle.workflowId}: ${errorText(err)}`, {
            cause: err,
          });
        await sleep(1_000);
      }
    }
  }

  /** The answer to a query of a running workflow, or undefined (no worker to answer, say). */
  async query<T>(handle: WorkflowHandle, name: string): Promise<T | undefined> {
    const client = await this.connect();
    try {
      return await client.connection.withDeadline(Date.now() + 3_000, () => handle.query<T>(name));
    } catch {
      return undefined;
    }
  }

  /** What a run is doing now: its pending activities, attempts and last failures. */
  async pending(handle: WorkflowHandle): Promise<string> {
    try {
      return pendingText((await handle.describe()).raw);
    } catch (err) {
      return `(could not describe it: ${errorText(err)})`;
    }
  }
}

interface RawDescription {
  pendingActivities?:
    | {
        activityType?: { name?: string | null } | null;
        attempt?: number | null;
        state?: number | null;
        lastWorkerIdentity?: string | null;
        lastFailure?: { message?: string | null } | null;
      }[]
    | null;
}

const ACTIVITY_STATES = [
  '?',
  'scheduled',
  'started',
  'cancel requested',
  'paused',
  'pause requested',
];

function pendingText(raw: RawDescription): string {
  const pending = raw.pendingActivities ?? [];
  if (pending.length === 0) return 'no pending activity';
  return pending
    .map((a) => {
      const parts = [
        `${a.activityType?.name ?? '?'} (${ACTIVITY_STATES[a.state ?? 0] ?? a.state}, attempt ${a.attempt ?? '?'}`,
      ];
      if (a.lastWorkerIdentity) parts.push(`on ${a.lastWorkerIdentity}`);
      if (a.lastFailure?.message)
        parts.push(`last failure: ${a.lastFailure.message.slice(0, 200)}`);
      return `${parts.join(', ')})`;
    })
    .join('; ');
}
