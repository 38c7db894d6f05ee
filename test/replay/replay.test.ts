import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from '../helpers/worker';

const DIR = path.join(__dirname, '..', 'fixtures', 'histories');

// Determinism regressions are the costliest bug in a Temporal app: a changed workflow that
// cannot replay the histories of runs already in flight strands them. Every history recorded
// by scripts/record-histories.ts must replay against today's workflow code, with no server.
describe('workflow replay of recorded histories', function () {
  this.timeout(60_000);
  const files = readdirSync(DIR).filter((f) => f.endsWith('.json'));

  it('has recorded histories of every workflow type', () => {
    const types = new Set(
      files.map((f) => f.replace(/^\d{4}-?\d{2}-?\d{2}(-\d{4})?-/, '').replace(/\.json$/, '')),
    );
    assert.deepEqual([...types].sort(), ['archive-all', 'archive-table', 'snapshot-schema']);
  });

  for (const file of files) {
    it(`replays ${file} without a determinism error`, async () => {
      const history = historyFromJSON(JSON.parse(readFileSync(path.join(DIR, file), 'utf8')));
      await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, file);
    });
  }
});
