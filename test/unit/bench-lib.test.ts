import assert from 'node:assert/strict';
import { coveredMs, type ActivitySpan } from '../../scripts/bench-lib';

describe('bench phase timing', () => {
  const span = (type: string, from: number, to: number): ActivitySpan => ({ type, from, to });

  it('counts overlapping activities of a phase once, as wall time', () => {
    const spans = [
      span('exportBatch', 0, 100),
      span('verifyBatch', 100, 150),
      span('exportBatch', 120, 200), // beside the verify: 150..200 is new
      span('deleteBatch', 150, 300), // another phase
      span('exportBatch', 400, 450),
      span('verifyBatch', 410, 420), // inside the export
    ];
    assert.equal(coveredMs(spans, ['exportBatch', 'verifyBatch']), 250);
    assert.equal(coveredMs(spans, ['deleteBatch']), 150);
    assert.equal(coveredMs(spans, ['findBatch']), 0);
  });
});
