import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');

/** Every TypeScript file of the product (not tests, scripts or the local stack). */
function productFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(rel);
      else if (entry.name.endsWith('.ts')) out.push(rel);
    }
  };
  for (const dir of ['src', 'activities', 'workflows']) walk(dir);
  return out.sort();
}

/** The homes of SQL: statement files and the two table-shaped statement classes. */
const SQL_HOMES = [
  /^src\/postgres\/sql\//,
  /^src\/archive\/table-sql\.ts$/,
  /^src\/restore\/restore-sql\.ts$/,
];
/** Transaction control is the library's own business, wherever a transaction is run. */
const TRANSACTION_CONTROL = /^(begin|commit|rollback)$/i;
/** A statement written out where it is run: `.query('...')`, `copyTo(`...`)`. */
const SQL_LITERAL = /(?:\.query(?:<[^>()]*>)?|copyTo|copyFrom)\(\s*(['"`])([\s\S]*?)\1/g;

// One owner per outside system keeps "never overwrite" and "always quoted" true by
// construction: these checks fail when an S3 command or a SQL statement appears elsewhere.
describe('one home per outside system', () => {
  const files = productFiles();

  it('sends S3 commands from src/store/bucket.ts only', () => {
    const offenders = files.filter((file) => {
      if (file === path.join('src', 'store', 'bucket.ts')) return false;
      const text = readFileSync(path.join(ROOT, file), 'utf8');
      return (
        /\w+Command\b[^;]*from '@aws-sdk\/client-s3'/.test(text) ||
        /@aws-sdk\/lib-storage/.test(text)
      );
    });
    assert.deepEqual(offenders, []);
  });

  it('keeps SQL statements in src/postgres/sql/, TableSql and RestoreSql only', () => {
    const offenders: string[] = [];
    for (const file of files) {
      if (SQL_HOMES.some((home) => home.test(file.split(path.sep).join('/')))) continue;
      const text = readFileSync(path.join(ROOT, file), 'utf8');
      for (const m of text.matchAll(SQL_LITERAL)) {
        const statement = m[0]
          .slice(1)
          .replace(/['"`]$/, '')
          .trim();
        if (TRANSACTION_CONTROL.test(statement)) continue;
        // Prose in comments and messages ("delete the rows ...") is not a statement.
        const line = text.slice(text.lastIndexOf('\n', m.index) + 1, text.indexOf('\n', m.index));
        if (/^\s*(\*|\/\/)/.test(line)) continue;
        if (!/\b(from|into|set|table|pg_|\$1|returning|current_setting)\b/i.test(statement))
          continue;
        offenders.push(`${file}: ${statement.slice(0, 60)}`);
      }
    }
    assert.deepEqual(offenders, []);
  });
});
