import assert from 'node:assert/strict';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { innermostMessage } from '../../src/shared/failures';
import type {
  PlanNotificationsInput,
  SendNotificationInput,
  SendNotificationResult,
} from '../../src/shared/notification-types';
import { fakeTable, runArchiveTable } from '../helpers/fake-table';
import { existingServerForSuite } from '../helpers/worker';

// How ArchiveTable sends notifications as it ends, with its activities in memory on the real
// Temporal server: one activity per (event, channel), bounded retries, and never a change to
// the run's own result.
describe('ArchiveTable notifications (activities in memory, real Temporal server)', function () {
  this.timeout(180_000);
  const env = existingServerForSuite();

  /** A channel that never takes a message (a fault that may pass), and one that does. */
  function channels() {
    const attempts: Record<string, number> = {};
    const sent: SendNotificationInput[] = [];
    return {
      attempts,
      sent,
      planNotifications: (input: PlanNotificationsInput) =>
        Promise.resolve({
          deliveries: input.kinds.flatMap((kind) => [
            { kind, channel: 'down' },
            { kind, channel: 'up' },
          ]),
        }),
      sendNotification: (input: SendNotificationInput): Promise<SendNotificationResult> => {
        attempts[input.channel] = (attempts[input.channel] ?? 0) + 1;
        if (input.channel === 'down')
          return Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:25'));
        sent.push(input);
        return Promise.resolve({ channel: input.channel, answer: 'HTTP 200' });
      },
    };
  }

  it('gives up on a channel that stays down after a bounded number of attempts, and the run still succeeds', async () => {
    const notify = channels();
    const result = await runArchiveTable(env(), fakeTable(2, notify));
    assert.ok(!(result instanceof Error), result instanceof Error ? result.message : '');
    assert.equal(result.outcome === 'archived' && result.rowsArchived, 20);
    assert.equal(notify.attempts.down, 6, 'the retry policy of NOTIFY: 6 attempts');
    assert.equal(notify.attempts.up, 1, 'the channel that took it: once');
    assert.deepEqual(
      notify.sent.map((s) => [s.event.kind, s.event.totals?.rowsArchived]),
      [['run_succeeded', 20]],
    );
  });

  it('keeps the run failed with its own error when a channel refuses the failure notification', async () => {
    const notify = channels();
    const result = await runArchiveTable(
      env(),
      fakeTable(2, {
        ...notify,
        sendNotification: (input) =>
          input.channel === 'down'
            ? Promise.reject(
                ApplicationFailure.create({
                  type: 'NotificationRefused',
                  message: 'down (slack): the webhook answered HTTP 404: no_service',
                  nonRetryable: true,
                }),
              )
            : notify.sendNotification(input),
        verifyBatch: () =>
          Promise.reject(
            ApplicationFailure.create({ type: 'VerificationError', message: 'SHA-256 differs' }),
          ),
      }),
    );
    assert.ok(result instanceof WorkflowFailedError);
    assert.equal(innermostMessage(result), 'SHA-256 differs');
    assert.deepEqual(
      notify.sent.map((s) => [s.event.kind, s.event.error]),
      [
        [
          'run_failed',
          { type: 'VerificationError', message: 'SHA-256 differs', step: 'verifyBatch' },
        ],
      ],
    );
  });
});
