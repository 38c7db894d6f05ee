import assert from 'node:assert/strict';
import { describeColumnPlan, planColumns } from '../../src/restore/column-plan';
import { copyLine, escapeCopyText } from '../../src/restore/restore-sql';
import type { SchemaSnapshot } from '../../src/store/documents';

describe('restore: COPY text lines', () => {
  it('escapes exactly what COPY text format treats specially', () => {
    assert.equal(escapeCopyText('a\\b\tc\nd\re'), 'a\\\\b\\tc\\nd\\re');
    assert.equal(escapeCopyText('plain ü "quotes" \\N'), 'plain ü "quotes" \\\\N');
  });

  it('writes NULL as \\N, keeps the column order, and ends with the line md5', () => {
    assert.equal(copyLine({ b: 'x', a: null }, ['a', 'b', 'c'], 'md5'), '\\N\tx\t\\N\tmd5\n');
  });
});

describe('restore: column plan', () => {
  const snapshot = {
    schemaHash: 'abcdef0123456789',
    columns: [
      { name: 'id', type: 'integer', nullable: false },
      { name: 'amount', type: 'integer', nullable: true },
      { name: 'gone', type: 'text', nullable: true },
    ],
  } as SchemaSnapshot;

  it('restores shared columns, casts changed types, defaults new ones, reports missing ones', () => {
    const plan = planColumns(snapshot, [
      { name: 'id', type: 'integer', generated: false },
      { name: 'amount', type: 'bigint', generated: false },
      { name: 'added', type: 'text', generated: false },
      { name: 'total', type: 'bigint', generated: true },
    ]);
    assert.deepEqual(
      plan.columns.map((c) => [c.name, c.cast]),
      [
        ['id', false],
        ['amount', true],
      ],
    );
    assert.deepEqual(plan.defaulted, ['added']);
    assert.deepEqual(plan.generated, ['total']);
    assert.deepEqual(plan.missing, ['gone']);
    assert.match(
      describeColumnPlan(plan, false).join('\n'),
      /REFUSED: archived columns missing from the target table: gone/,
    );
    assert.match(
      describeColumnPlan(plan, true).join('\n'),
      /dropped \(not in the target table, --drop-missing-columns\): gone/,
    );
  });
});
