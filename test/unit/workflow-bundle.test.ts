import assert from 'node:assert/strict';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';

// The worker bundles workflows/ into Temporal's deterministic sandbox. These tests prove the
// real entry bundles, and that the bundler itself rejects what the lint fence forbids.
describe('workflow bundle', function () {
  this.timeout(60_000);
  const quiet = { logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} } };

  it('bundles workflows/index.ts with no Node-only module in it', async () => {
    const { code } = await bundleWorkflowCode({
      workflowsPath: require.resolve('../../workflows'),
      ...quiet,
    });
    assert.match(code, /SnapshotSchema/);
    assert.doesNotMatch(code, /require\("pg"\)|@aws-sdk|pino/);
  });

  it('refuses a workflow file that imports a Node built-in', async () => {
    await assert.rejects(
      bundleWorkflowCode({
        workflowsPath: path.join(__dirname, '..', 'fixtures', 'non-deterministic-workflow.ts'),
        ...quiet,
      }),
      /Webpack finished with errors/,
    );
  });
});
