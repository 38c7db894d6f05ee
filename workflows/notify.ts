import {
  CancellationScope,
  log,
  patched,
  proxyActivities,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { innermostMessage } from '../src/shared/failures';
import { runEndEvents, type RunEnd } from '../src/shared/notification-types';
import type { ResolvedTableRef } from '../src/shared/table-ref';
import { NOTIFY, SHORT_IO } from './activity-options';

const { planNotifications } = proxyActivities<Activities>(SHORT_IO);
const { sendNotification } = proxyActivities<Activities>(NOTIFY);

/** Marks the histories in which a run's end sends notifications (older ones replay without). */
const NOTIFY_PATCH = 'notify-run-end';

/**
 * Tells the channels the worker's config names about a run's end (docs/notifications.md):
 * a failure, or a success with its schema drift and legal-hold skips. One activity per
 * (event, channel), so a retry resends only what failed. Never changes the run's result: a
 * message that is still not delivered after its bounded retries is logged, and the run
 * ends as it would have. Runs on even when the run is being cancelled.
 */
export async function notifyRunEnd(ref: ResolvedTableRef, end: RunEnd): Promise<void> {
  const info = workflowInfo();
  const events = runEndEvents(
    {
      ...ref,
      workflowId: info.workflowId,
      runId: info.runId,
      firstRunId: info.firstExecutionRunId,
      // Workflow time: the same on every replay.
      at: new Date().toISOString(),
    },
    end,
  );
  if (events.length === 0 || !patched(NOTIFY_PATCH)) return;
  await CancellationScope.nonCancellable(async () => {
    let planned;
    try {
      planned = await planNotifications({
        database: ref.database,
        kinds: events.map((e) => e.kind),
      });
    } catch (err) {
      log.warn('notifications not sent', { error: innermostMessage(err) });
      return;
    }
    const deliveries = planned.deliveries.flatMap((d) => {
      const event = events.find((e) => e.kind === d.kind);
      return event ? [{ event, channel: d.channel }] : [];
    });
    const sent = await Promise.allSettled(deliveries.map((d) => sendNotification(d)));
    sent.forEach((result, i) => {
      if (result.status === 'rejected')
        log.warn('notification not delivered', {
          channel: deliveries[i]!.channel,
          event: deliveries[i]!.event.id,
          error: innermostMessage(result.reason),
        });
    });
  });
}
