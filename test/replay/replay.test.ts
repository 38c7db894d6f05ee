import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from '../helpers/worker';

const DIR = path.join(__dirname, '..', 'fixtures', 'histories');

/** The workflow types the worker hosts, as workflows/index.ts exports them (importing it
 * outside the workflow sandbox is not possible). */
const HOSTED = [
  ...readFileSync(path.join(__dirname, '..', '..', 'workflows', 'index.ts'), 'utf8').matchAll(
    /^export \{ (\w+) \} from/gm,
  ),
].map((m) => m[1]!);

// Determinism regressions are the costliest bug in a Temporal app: a changed workflow that
// cannot replay the histories of runs already in flight strands them. Every history recorded
// by scripts/record-histories.ts must replay against today's workflow code, with no server.
describe('workflow replay of recorded histories', function () {
  this.timeout(60_000);
  const files = readdirSync(DIR).filter((f) => f.endsWith('.json'));
  const histories = files.map((file) => ({
    file,
    history: historyFromJSON(JSON.parse(readFileSync(path.join(DIR, file), 'utf8'))),
  }));

  it('has a recorded history of every workflow type the worker hosts', () => {
    const recorded = new Set(
      histories.map(
        ({ history }) =>
          history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name,
      ),
    );
    assert.deepEqual([...recorded].sort(), [...HOSTED].sort());
  });

  for (const { file, history } of histories) {
    it(`replays ${file} without a determinism error`, async () => {
      await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, file);
    });
  }
});
