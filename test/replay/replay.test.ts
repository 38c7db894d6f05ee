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

/** A history as historyToJSON writes it: only what the shape checks below read. */
interface RawHistory {
  events: {
    eventType: string;
    workflowExecutionStartedEventAttributes?: {
      workflowType: { name: string };
      continuedExecutionRunId?: string;
    };
    activityTaskScheduledEventAttributes?: { activityType: { name: string } };
  }[];
}

/** The paths an ArchiveTable history took, read from its events. */
function archiveTableShapes({ events }: RawHistory): string[] {
  const started = events[0]?.workflowExecutionStartedEventAttributes;
  if (started?.workflowType.name !== 'ArchiveTable') return [];
  const scheduled = (name: string) =>
    events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType.name === name).length;
  const shapes: string[] = [];
  if (started.continuedExecutionRunId) shapes.push('continued as new');
  if (events.at(-1)?.eventType === 'EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED')
    shapes.push('cancelled');
  if (scheduled('estimateArchive') > 0) shapes.push('dry run');
  if (scheduled('holdTableLock') > 1) shapes.push('lock retaken');
  if (scheduled('holdTableLock') === 1 && scheduled('surveyTable') === 0)
    shapes.push('locked by another run');
  return shapes;
}

// Determinism regressions are the costliest bug in a Temporal app: a changed workflow that
// cannot replay the histories of runs already in flight strands them. Every history recorded
// by scripts/record-histories.ts must replay against today's workflow code, with no server.
describe('workflow replay of recorded histories', function () {
  this.timeout(60_000);
  const files = readdirSync(DIR).filter((f) => f.endsWith('.json'));
  const histories = files.map((file) => {
    const json = JSON.parse(readFileSync(path.join(DIR, file), 'utf8')) as RawHistory;
    return { file, json, history: historyFromJSON(json) };
  });

  it('has a recorded history of every workflow type the worker hosts', () => {
    const recorded = new Set(
      histories.map(
        ({ history }) =>
          history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name,
      ),
    );
    assert.deepEqual([...recorded].sort(), [...HOSTED].sort());
  });

  it('has the shapes of ArchiveTable that take other paths', () => {
    const shapes = new Set(histories.flatMap(({ json }) => archiveTableShapes(json)));
    assert.deepEqual([...shapes].sort(), [
      'cancelled',
      'continued as new',
      'dry run',
      'lock retaken',
      'locked by another run',
    ]);
  });

  for (const { file, history } of histories) {
    it(`replays ${file} without a determinism error`, async () => {
      await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, file);
    });
  }
});
