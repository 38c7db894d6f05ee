import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Activities } from '../../activities';
import { ArchiveDatabase, ArchiveTable } from '../../src/shared/search-attributes';
import type { SnapshotSchemaInput, SnapshotSchemaResult } from '../../src/shared/workflow-types';
import type { SnapshotSchema } from '../../workflows';
import { existingServerForSuite, withInMemoryActivities } from '../helpers/worker';

// The workflow's own logic, on the real Temporal server, with its activity replaced.
describe('SnapshotSchema workflow (mocked activity, real Temporal server)', function () {
  this.timeout(60_000);
  const env = existingServerForSuite();

  async function execute(input: unknown, activity: Activities['snapshotSchema']) {
    return withInMemoryActivities(env(), { snapshotSchema: activity }, async (taskQueue) => {
      const handle = await env().client.workflow.start<typeof SnapshotSchema>('SnapshotSchema', {
        taskQueue,
        workflowId: `test-snapshot-${randomUUID()}`,
        args: [input as SnapshotSchemaInput],
      });
      const result = await handle.result().catch((err: unknown) => err);
      return { handle, result };
    });
  }

  it('passes the table on with the schema defaulted and tags the run for search', async () => {
    let received: SnapshotSchemaInput | undefined;
    const { handle, result } = await execute({ database: 'app', table: 'audit_log' }, (input) => {
      received = input;
      return Promise.resolve({ schemaHash: 'h' } as SnapshotSchemaResult);
    });
    assert.deepEqual(received, { database: 'app', schema: 'public', table: 'audit_log' });
    assert.deepEqual(result, { schemaHash: 'h' });
    const { typedSearchAttributes } = await handle.describe();
    assert.equal(typedSearchAttributes.get(ArchiveDatabase), 'app');
    assert.equal(typedSearchAttributes.get(ArchiveTable), 'public.audit_log');
  });

  it('fails at once, naming the field, on input without a table', async () => {
    let calls = 0;
    const { result } = await execute({ database: 'app' }, () => {
      calls++;
      return Promise.reject(new Error('not reached'));
    });
    assert.ok(result instanceof WorkflowFailedError);
    assert.ok(result.cause instanceof ApplicationFailure);
    assert.equal(result.cause.type, 'InvalidWorkflowInput');
    assert.match(result.cause.message, /"table" must be a non-empty string/);
    assert.equal(calls, 0);
  });

  it('does not retry an activity failure that no retry can fix', async () => {
    let calls = 0;
    const { result } = await execute({ database: 'app', table: 'gone' }, () => {
      calls++;
      return Promise.reject(
        ApplicationFailure.create({ type: 'TableNotFoundError', message: 'gone' }),
      );
    });
    assert.ok(result instanceof WorkflowFailedError);
    assert.equal(calls, 1);
  });
});
