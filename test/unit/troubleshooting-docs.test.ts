import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as errors from '../../src/shared/errors';

/**
 * docs/troubleshooting.md explains every error the archiver raises on purpose. A class added
 * to src/shared/errors.ts without an entry there fails this test, so the page cannot fall
 * behind the code.
 */
describe('docs/troubleshooting.md', () => {
  type ErrorClass = new (message: string) => errors.ArchiverError;
  const classes = (Object.values(errors) as unknown[]).filter(
    (value): value is ErrorClass =>
      typeof value === 'function' && value.prototype instanceof errors.ArchiverError,
  );
  let headings: string[] = [];
  before(() => {
    const page = readFileSync(path.join(__dirname, '../../docs/troubleshooting.md'), 'utf8');
    headings = page.split('\n').filter((line) => /^#{2,4} /.test(line));
  });

  it('finds the error classes to check', () => {
    assert.ok(classes.length >= 10, `only ${classes.length} error classes found`);
  });

  it('has a heading for every error class of src/shared/errors.ts, naming its class and code', () => {
    const missing = classes
      .map((C) => ({ name: C.name, code: new C('x').code }))
      .filter(
        ({ name, code }) =>
          !headings.some((h) => h.includes(`\`${name}\``) && h.includes(`\`${code}\``)),
      )
      .map(({ name, code }) => `${name} (${code})`);
    assert.deepEqual(
      missing,
      [],
      `no "### \`Class\` (\`CODE\`)" heading for: ${missing.join(', ')}`,
    );
  });

  it('names no error class that src/shared/errors.ts does not have', () => {
    const known = new Set(classes.map((C) => C.name));
    const named = headings
      .flatMap((h) => [...h.matchAll(/`([A-Z][A-Za-z]+Error)`/g)].map((m) => m[1]!))
      .filter((name) => !known.has(name));
    assert.deepEqual(named, [], 'headings name classes that are gone or misspelt');
  });
});
