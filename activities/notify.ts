import { cancellationSignal, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { describeChange } from '../src/archive/schema-snapshot';
import { planDeliveries, resolveChannel } from '../src/notify/channels';
import { deliver, DeliveryError } from '../src/notify/deliver';
import { eventMessage } from '../src/notify/message';
import type {
  PlanNotificationsInput,
  PlanNotificationsResult,
  SendNotificationInput,
  SendNotificationResult,
} from '../src/shared/notification-types';
import { latestSchemaChange } from '../src/store/schema-changes';
import { runLink, webUiUrl } from '../src/temporal-client/connection';
import type { ActivityDeps } from './deps';

/** The failure type of a message a channel refused for good: retry policies stop on it. */
export const NOTIFICATION_REFUSED = 'NotificationRefused';

export function notifyActivities(deps: ActivityDeps) {
  const { config } = deps;
  return {
    /**
     * Which channels hear of which events of a run's end: the database's `notify` channels
     * that take each event (min_severity, events). From the worker's config alone.
     */
    planNotifications(input: PlanNotificationsInput): Promise<PlanNotificationsResult> {
      return Promise.resolve({ deliveries: planDeliveries(config, input) });
    },

    /**
     * Sends one event to one channel. Each (event, channel) pair is an activity of its own, so
     * Temporal's record of its completion is the delivery record: a retry resends only to
     * the channel whose attempt failed, and a replay sends nothing. An attempt the server
     * has given up on learns it from its heartbeat and does not send. A message can still be
     * sent twice when an attempt dies (or its answer is lost) between the receiver taking it
     * and Temporal recording the completion (docs/notifications.md).
     */
    async sendNotification(input: SendNotificationInput): Promise<SendNotificationResult> {
      const { event } = input;
      const channel = resolveChannel(config, input.channel, deps.env);
      const ui = webUiUrl(config.temporal);
      // What changed, from the record the run wrote; a bucket that cannot say within 10 s
      // leaves it out, the message goes anyway.
      const change =
        event.kind === 'schema_drift'
          ? await Promise.race([
              latestSchemaChange(deps.store, event).then((c) => c && describeChange(c)),
              new Promise<undefined>((resolve) =>
                setTimeout(() => resolve(undefined), 10_000).unref(),
              ),
            ]).catch(() => undefined)
          : undefined;
      const message = eventMessage(
        event,
        runLink(ui, config.temporal.namespace, event.workflowId, event.runId),
        change,
      );
      const signal = cancellationSignal();
      signal.throwIfAborted();
      try {
        const answer = await deliver(channel, message, signal);
        log.info('notification sent', { channel: channel.name, event: event.id, answer });
        return { channel: channel.name, answer };
      } catch (err) {
        if (err instanceof DeliveryError && err.permanent)
          throw ApplicationFailure.create({
            type: NOTIFICATION_REFUSED,
            message: err.message,
            nonRetryable: true,
          });
        throw err;
      }
    },
  };
}
