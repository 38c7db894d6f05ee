import assert from 'node:assert/strict';
import { CopyLineReader } from '../../src/archive/copy-lines';

// The lines built from COPY text are compared with PostgreSQL's own json_object output in
// test/integration/copy-lines.test.ts; these are the cases a real table makes hard to isolate.
describe('CopyLineReader', () => {
  const reader = new CopyLineReader(['id', 'at', 'v'], 0, 1);
  const read = (fields: string[]) =>
    reader.read(Buffer.from(['42', '(3,7)', '981', ...fields].join('\t')));
  const value = (line: Buffer) => (JSON.parse(line.toString()) as Record<string, unknown>).v;

  it('holds a field made only of the widest escapes, with nothing else on the line to spare', () => {
    const controls = read(['7', '2020', '\u0001'.repeat(1000)]);
    assert.equal(
      controls.line.toString(),
      `{"id" : "7", "at" : "2020", "v" : "${'\\u0001'.repeat(1000)}"}`,
    );
    // COPY's \v (two bytes) is JSON's \u000b (six).
    const verticalTabs = read(['7', '2020', '\\v'.repeat(1000)]);
    assert.equal(
      verticalTabs.line.toString(),
      `{"id" : "7", "at" : "2020", "v" : "${'\\u000b'.repeat(1000)}"}`,
    );
  });

  it('reads the key and timestamp with their escapes undone, NULL as null and \\N text as text', () => {
    const row = read(['a\\tb\\\\c', '2020-01-01 00:00:00+00', '\\N']);
    assert.equal(row.micros, 42n);
    assert.deepEqual([row.ctid, row.xmin], ['(3,7)', '981']);
    assert.equal(row.key, 'a\tb\\c');
    assert.equal(row.timestamp, '2020-01-01 00:00:00+00');
    assert.equal(value(row.line), null);
    assert.equal(value(read(['1', 't', '\\\\N']).line), '\\N');
  });

  it('refuses a line with another number of fields than the columns', () => {
    assert.throws(() => read(['1', '2']), /5 fields where 6 were expected/);
  });
});
