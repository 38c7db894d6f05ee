import assert from 'node:assert/strict';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { to as copyTo } from 'pg-copy-streams';
import { LineTransform } from '../../src/archive/lines';
import { TableSql } from '../../src/archive/table-sql';
import { TestDatabase } from '../helpers/database';

/** Every byte from 0x01 to 0x7f, and some UTF-8 beyond. */
const ALL_ASCII = String.fromCharCode(...Array.from({ length: 127 }, (_, i) => i + 1));

const COLUMNS: [name: string, type: string][] = [
  ['id', 'bigint primary key'],
  ['created_at', 'timestamptz not null'],
  ['note', 'text'],
  ['say "hi"', 'text'],
  [`tab\there\\back${String.fromCharCode(1)}`, 'text'],
  ['flag', 'boolean'],
  ['addr', 'inet'],
  ['code', 'char(6)'],
  ['blob', 'bytea'],
  ['doc', 'jsonb'],
  ['raw_json', 'json'],
  ['tags', 'text[]'],
  ['amount', 'numeric'],
  ['span', 'tstzrange'],
];

// The export builds each archived line in the worker from COPY's text output; the delete
// recomputes it in PostgreSQL (json_object) and compares fingerprints. These must agree byte
// for byte on every value, or rows would never be deleted.
describe('archived lines built from COPY text (real PostgreSQL)', function () {
  this.timeout(60_000);
  let db: TestDatabase;

  before(async () => {
    db = await TestDatabase.create();
    const ident = (n: string) => `"${n.replace(/"/g, '""')}"`;
    await db.query(
      `create table audit (${COLUMNS.map(([n, t]) => `${ident(n)} ${t}`).join(', ')})`,
    );
    const texts = [
      ALL_ASCII,
      '',
      '\\N',
      'N',
      '\\',
      'tab\tnewline\ncr\rvt\vff\fbs\b',
      'é ü 日本語 🎉 \u2028\u2029',
      '"quoted" \\"escaped\\"',
      '\u007f\u0080',
      // The widest escapes, many of them: the line's buffer must hold them all.
      '\u0001'.repeat(500),
      '\v'.repeat(500),
      '"\\'.repeat(500),
    ];
    const params: unknown[] = [];
    const rows = texts.map((text, i) => {
      const values = [
        i + 1,
        `2020-01-0${(i % 9) + 1} 0${i % 10}:00:00.12345+00`,
        text,
        i % 2 ? null : text,
        text.split('').reverse().join(''),
        i % 3 === 0 ? null : i % 2 === 0,
        i % 2 ? '10.0.0.1' : '2001:db8::/32',
        `c${i}`,
        Buffer.from(text, 'utf8'),
        JSON.stringify({ text, n: i, nested: [text, null] }),
        ` { "spaced" : ${JSON.stringify(text)} } `,
        [text, null, 'a,b', '{x}', ''],
        '123456789012345678901234567890.000000000000001',
        '["2020-01-01 00:00:00+00","2020-01-02 00:00:00+00")',
      ];
      const base = params.length;
      params.push(...values);
      return `(${values.map((_, j) => `$${base + j + 1}`).join(', ')})`;
    });
    await db.query(`insert into audit values ${rows.join(', ')}`, params);
    await db.query(`insert into audit (id, created_at) values (100, '2020-01-01')`);
  });

  after(async () => {
    await db?.drop();
  });

  it("builds every row's line exactly as json_object gives it in PostgreSQL, beside its version", async () => {
    const columns = COLUMNS.map(([name]) => ({ name, type: 'text', base_type: 'text' }));
    columns[0]!.type = 'bigint';
    const sql = new TableSql({
      schema: 'public',
      name: 'audit',
      timestampColumn: 'created_at',
      primaryKey: 'id',
      columns,
    });
    const expected = await db.query<{ key: string; version: string; ts: string; line: string }>(
      `select t.id::text as key, t.ctid::text || ' ' || t.xmin::text as version,
              t.created_at::text as ts, ${sql.rowJson('t')} as line
         from audit as t order by t.id`,
    );
    assert.equal(expected.length, 13);

    const reader = sql.copyLineReader();
    const built: { key: string; version: string; ts: string; line: string }[] = [];
    const client = await db.client.connect();
    try {
      // A "day" that spans every row: this test wants them all at once.
      const copy = sql.exportCopy({
        cutoff: '2030-01-01T00:00:00Z',
        dayStart: '2000-01-01T00:00:00Z',
        dayEnd: '2030-01-01T00:00:00Z',
        afterKey: null,
        limit: 1000,
      });
      await pipeline(
        client.query(copyTo(copy)),
        new LineTransform((copyLine) => {
          const row = reader.read(copyLine);
          built.push({
            key: row.key,
            version: `${row.ctid} ${row.xmin}`,
            ts: row.timestamp,
            line: row.line.toString('utf8'),
          });
          return undefined;
        }),
        new Writable({ write: (_chunk, _encoding, done) => done() }),
      );
    } finally {
      client.release();
    }
    assert.deepEqual(built, expected);
    // The lines are JSON, and hold the values as PostgreSQL's text forms.
    const [first, second] = built.map((b) => JSON.parse(b.line) as Record<string, string | null>);
    assert.equal(first!.note, ALL_ASCII);
    assert.equal(first!.flag, null);
    assert.equal(second!.flag, 'false'); // boolean::text, not COPY's own 'f'
  });
});
