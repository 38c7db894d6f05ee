import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildProgram } from '../../src/app/cli/main';
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

/**
 * Every `audit-archiver ...` command the operator docs give (in code blocks and inline code)
 * names a real subcommand and only options it has, so a renamed option cannot leave a
 * runbook step that fails in the middle of an incident.
 */
describe('operator docs name only real commands and options', () => {
  const DOCS = ['operations', 'runbooks', 'troubleshooting', 'faq', 'multi-database'];
  const program = buildProgram(() => Promise.resolve());

  /** The code of a page: fenced blocks (backslash continuations joined) and inline spans. */
  function codeOf(text: string): string[] {
    const code: string[] = [];
    const fence = /^\s*```[^\n]*\n([\s\S]*?)^\s*```/gm;
    for (const block of text.matchAll(fence)) {
      code.push(...block[1]!.replace(/\\\n\s*/g, ' ').split('\n'));
    }
    for (const span of text.replace(fence, '').matchAll(/`([^`]+)`/g)) code.push(span[1]!);
    return code;
  }

  /** `audit-archiver` at the start of a command line (after `$ ` or `npx `), and what follows. */
  function commandsIn(line: string): string[][] {
    const found: string[][] = [];
    const start = /(?:^|[;&|(]\s*)(?:\$ )?(?:npx )?audit-archiver((?: (?:\\\||[^\s#;&|)])+)*)/g;
    for (const m of line.matchAll(start)) {
      const words = m[1]!.trim().split(/\s+/).filter(Boolean);
      // `audit-archiver lock <mark> <workflow id>` is a lock session's application_name;
      // `audit-archiver ...` stands for any command.
      if (words.length === 0 || ['lock', '...'].includes(words[0]!)) continue;
      // A table cell's `hold place\|list\|release`: each of the alternatives.
      const at = words.findIndex((w) => w.includes('\\|'));
      if (at < 0) found.push(words);
      else
        for (const alt of words[at]!.split('\\|'))
          found.push([...words.slice(0, at), alt, ...words.slice(at + 1)]);
    }
    return found;
  }

  for (const doc of DOCS) {
    it(`docs/${doc}.md`, () => {
      const text = readFileSync(path.join(__dirname, `../../docs/${doc}.md`), 'utf8');
      const problems: string[] = [];
      let checked = 0;
      for (const words of codeOf(text).flatMap(commandsIn)) {
        if (words.length === 0 || words[0]!.startsWith('-')) continue;
        let cmd = program;
        const names: string[] = [];
        while (words.length > 0 && !words[0]!.startsWith('-')) {
          const sub = cmd.commands.find((c) => c.name() === words[0]);
          if (!sub) break;
          cmd = sub;
          names.push(words.shift()!);
        }
        if (names.length === 0 || cmd.commands.length > 0) {
          problems.push(`audit-archiver ${[...names, ...words].join(' ')}: no such command`);
          continue;
        }
        const known = new Set(cmd.options.flatMap((o) => [o.long, o.short]).concat('--help'));
        for (const flag of words.filter((w) => /^--?[a-z]/i.test(w)).map((w) => w.split('=')[0]!))
          if (!known.has(flag))
            problems.push(`audit-archiver ${names.join(' ')}: no option ${flag}`);
        checked++;
      }
      assert.ok(checked > 0, 'no audit-archiver command found on the page');
      assert.deepEqual(problems, []);
    });
  }
});
