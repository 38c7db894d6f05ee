import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../../src/config';
import type { ConfigInput } from '../../src/config/schema';
import { qualifiedName, quoteIdent } from '../../src/postgres/identifiers';
import { archiveTableWorkflowId } from '../../src/shared/archive-types';
import { namesOfTablePath, tablePath } from '../../src/shared/names';
import type { RestoreResult } from '../../src/shared/restore-types';
import { createS3Client } from '../../src/store/client';
import { isAuditTrailKey, tablePrefix } from '../../src/store/layout';
import type { ArchiveAll, Restore, Validate } from '../../workflows';
import { listAll, readJsonObject } from '../helpers/bucket';
import { testConfig, testConfigInput, writeConfigFile } from '../helpers/config';
import { TestDatabase } from '../helpers/database';
import { runMain } from '../helpers/in-process-cli';
import { startTestWorker, uniqueTaskQueue, type TestWorker } from '../helpers/worker';

/** A table whose names need quoting; timestamp and key columns default to created_at and id. */
interface Spec {
  schema: string;
  table: string;
  ts?: string;
  key?: string;
}

const SPECS: Spec[] = [
  // Dots, in the schema and in the table: "a.b"."c" and "a"."b.c" read the same unquoted.
  { schema: 'a.b', table: 'c' },
  { schema: 'a', table: 'b.c' },
  { schema: 'public', table: 'a.b' },
  { schema: 'public', table: 'public.audit_log' },
  { schema: 'public', table: '.' },
  { schema: 'public', table: '%2E' },
  // Quotes
  { schema: 'public', table: 'say "hi"' },
  { schema: 'sch"ema', table: '"quoted"' },
  { schema: 'public', table: "o'brien" },
  { schema: "it's", table: "l'audit" },
  { schema: 'public', table: 'semi"; drop table audit_log; --' },
  // Spaces
  { schema: 'public', table: 'audit log' },
  { schema: 'public', table: ' leading' },
  { schema: 'public', table: 'trailing ' },
  { schema: ' spaced schema ', table: ' both ' },
  // Unicode and emoji
  { schema: 'public', table: 'journal_événements' },
  { schema: 'ünïcödé', table: 'Ärger_日志' },
  { schema: 'public', table: '📜 audit' },
  { schema: '🗄️', table: '🧾' },
  // Case
  { schema: 'public', table: 'AUDIT' },
  { schema: 'public', table: 'AuditLog' },
  { schema: 'MixedCase', table: 'audit' },
  // Reserved words
  { schema: 'public', table: 'select' },
  { schema: 'table', table: 'table' },
  { schema: 'public', table: 'user' },
  { schema: 'order', table: 'group' },
  // 63 bytes, the longest name PostgreSQL keeps (ASCII, and 31 two-byte characters + 1)
  { schema: 'public', table: 'a'.repeat(63) },
  { schema: 'b'.repeat(63), table: `${'é'.repeat(31)}x` },
  // The layout's own punctuation: the escape character, slashes, backslashes, control characters
  { schema: 'public', table: '100%' },
  { schema: 'public', table: '%25' },
  { schema: 'public', table: 'a/b' },
  { schema: 'x/y', table: 'z' },
  { schema: 'public', table: 'back\\slash' },
  { schema: 'public', table: 'new\nline' },
  { schema: 'public', table: 'tab\there' },
  { schema: 'public', table: '_schema' },
  { schema: 'public', table: 'year=2024' },
  { schema: 'public', table: '$1' },
  // Column names that need quoting
  { schema: 'public', table: 'cols_spaces', ts: 'Created At', key: '"id"' },
  { schema: 'public', table: 'cols_reserved', ts: 'select', key: 'user' },
  { schema: 'public', table: 'cols_dots', ts: 'when.at', key: 'k.e.y' },
  { schema: 'public', table: 'cols_unicode', ts: 'créé à', key: 'ключ' },
  { schema: 'public', table: 'cols_case', ts: 'TS', key: 'ID' },
  { schema: 'public', table: 'cols_percent', ts: '%ts', key: 'id/%' },
];

const OLD_ROWS = 12;
const NEW_ROWS = 3;
/** The side table a table is restored into, in its own schema (a target name holds no dot). */
const sideName = (s: Spec) => `restored side ${SPECS.indexOf(s)}`;

const show = (s: Spec) => JSON.stringify(`${s.schema}|${s.table}`);

// Issue 10, "Bad input, counted", and guarantees 5 and 10 (docs/architecture.md): tables, schemas and columns whose
// names need quoting (dots, quotes, spaces, unicode, emoji, case, reserved words, 63 bytes,
// %, /, backslash, control characters) are archived by one ArchiveAll run, validated with no
// problem, and restored into a side table byte for byte; every table's bucket prefix and
// workflow id is its own.
describe('Bad input, counted: identifiers that need quoting (real stack)', function () {
  this.timeout(600_000);
  const prefix = `identifiers-${randomUUID()}/`;
  const taskQueue = uniqueTaskQueue();
  let db: TestDatabase;
  let config: Config;
  let configInput: ConfigInput;
  let worker: TestWorker;
  let s3: S3Client;
  /** md5 of each table's old rows (the ones the archive takes), before the archive. */
  const expected = new Map<Spec, string>();
  const done = { archived: 0, validated: 0, restored: 0 };
  let started = Date.now();

  const ts = (s: Spec) => s.ts ?? 'created_at';
  const key = (s: Spec) => s.key ?? 'id';
  const table = (s: Spec) => qualifiedName(s.schema, s.table);
  const side = (s: Spec) => qualifiedName(s.schema, sideName(s));

  /** md5 over every row's text form in key order. */
  async function digest(qualified: string, s: Spec, where = 'true'): Promise<string> {
    const { md5 } = await db.one<{ md5: string }>(
      `select md5(coalesce(string_agg(t::text, E'\\n' order by t.${quoteIdent(key(s))}), '')) as md5
         from ${qualified} t where ${where}`,
    );
    return md5;
  }

  before(async () => {
    started = Date.now();
    db = await TestDatabase.create();
    for (const s of SPECS) {
      if (s.schema !== 'public')
        await db.query(`create schema if not exists ${quoteIdent(s.schema)}`);
      await db.query(
        `create table ${table(s)} (
           ${quoteIdent(key(s))} bigint generated always as identity primary key,
           ${quoteIdent(ts(s))} timestamptz not null,
           note text,
           amount numeric,
           tags text[])`,
      );
      await db.query(
        `insert into ${table(s)} (${quoteIdent(ts(s))}, note, amount, tags)
         select now() - interval '10 days' + (g % 2) * interval '1 day' + g * interval '1 minute',
                'row ' || g || ' of ' || $2::text || E' «ü» \\t"q"', 12345678901234567890.5 + g,
                array['a,b', $2::text]
           from generate_series(1, $1::int) g`,
        [OLD_ROWS, s.table],
      );
      await db.query(
        `insert into ${table(s)} (${quoteIdent(ts(s))}, note) select now() - interval '1 hour', 'recent' from generate_series(1, $1::int)`,
        [NEW_ROWS],
      );
      expected.set(
        s,
        await digest(table(s), s, `${quoteIdent(ts(s))} < now() - interval '5 days'`),
      );
      await db.query(`create table ${side(s)} (like ${table(s)})`);
      await db.query(`alter table ${side(s)} add primary key (${quoteIdent(key(s))})`);
    }
    const overrides = (c: ConfigInput) => {
      c.defaults = { retention_days: 3, batch_size: 8, pause_between_batches_ms: 0 };
      c.archive = { max_parallel_tables: 6, max_parallel_tables_per_database: 6 };
    };
    const tables = SPECS.map((s) => ({
      name: s.table,
      schema: s.schema,
      timestamp_column: ts(s),
      primary_key: key(s),
    }));
    configInput = testConfigInput({ database: db.name, prefix, taskQueue, tables, overrides });
    config = testConfig({ database: db.name, prefix, taskQueue, tables, overrides });
    worker = await startTestWorker(config);
    s3 = createS3Client(config.s3);
  });

  after(async () => {
    const seconds = ((Date.now() - started) / 1000).toFixed(0);
    process.stdout.write(
      `      identifiers: ${SPECS.length} tables, ${Math.min(done.archived, done.validated, done.restored)} archived, validated and restored exactly (${seconds} s)\n`,
    );
    await worker?.stop();
    s3?.destroy();
    await db?.drop();
  });

  const refOf = (s: Spec) => ({ database: db.name, schema: s.schema, table: s.table });

  it(`holds ${SPECS.length} (30+) distinct tables, each name kept as written by the config`, () => {
    assert.ok(SPECS.length >= 30);
    assert.equal(new Set(SPECS.map(show)).size, SPECS.length);
    for (const s of SPECS) {
      const configured = config.databases[0]!.tables.find(
        (t) => t.schema === s.schema && t.name === s.table,
      );
      assert.ok(configured, `${show(s)} not in the parsed config`);
      assert.equal(configured.timestamp_column, ts(s));
      assert.equal(configured.primary_key, key(s));
    }
  });

  it('archives every table in one ArchiveAll run: old rows out, recent rows kept', async () => {
    const result = await worker.client.workflow.execute<typeof ArchiveAll>('ArchiveAll', {
      taskQueue,
      workflowId: `identifiers-archive-${randomUUID()}`,
      args: [{ database: db.name }],
    });
    const failed = result.tables.filter((t) => t.outcome !== 'archived');
    assert.deepEqual(
      failed.map((t) => `${t.schema}|${t.table}: ${t.outcome} ${t.reason ?? ''}`),
      [],
    );
    assert.equal(result.tables.length, SPECS.length);
    for (const s of SPECS) {
      const t = result.tables.find((r) => r.schema === s.schema && r.table === s.table);
      assert.ok(t, show(s));
      assert.equal(t.rowsDeleted, OLD_ROWS, show(s));
      assert.equal(t.workflowId, archiveTableWorkflowId(refOf(s)));
      const { n } = await db.one<{ n: number }>(`select count(*)::int as n from ${table(s)}`);
      assert.equal(n, NEW_ROWS, show(s));
      done.archived++;
    }
    assert.equal(new Set(result.tables.map((t) => t.workflowId)).size, SPECS.length);
  });

  it("gives every table a bucket prefix of its own that names it, and no prefix inside another's", async () => {
    const prefixes = SPECS.map((s) => tablePrefix({ prefix: config.s3.prefix, ...refOf(s) }));
    assert.equal(new Set(prefixes).size, SPECS.length);
    for (const a of prefixes)
      for (const b of prefixes) if (a !== b) assert.ok(!a.startsWith(b), `${a} inside ${b}`);
    const keys = (await listAll(s3, prefix)).map((o) => o.key);
    for (const [i, s] of SPECS.entries()) {
      const mine = keys.filter((k) => k.startsWith(prefixes[i]!));
      const objects = mine.filter((k) => k.endsWith('.jsonl.gz'));
      assert.ok(objects.length >= 2, `${show(s)}: ${objects.length} objects`);
      assert.deepEqual(namesOfTablePath(tablePath(refOf(s))), refOf(s));
      const manifest = await readJsonObject<{ database: string; schema: string; table: string }>(
        s3,
        objects[0]!.replace(/\.jsonl\.gz$/, '.manifest.json'),
      );
      assert.deepEqual(
        [manifest.database, manifest.schema, manifest.table],
        [db.name, s.schema, s.table],
      );
    }
    // Every key of the run belongs to exactly one table, but the audit trail's, which is the
    // whole archive's.
    for (const k of keys.filter((key) => !isAuditTrailKey(prefix, key)))
      assert.equal(prefixes.filter((p) => k.startsWith(p)).length, 1, `${k} has no single owner`);
  });

  it('validates every table with no problem', async () => {
    const result = await worker.client.workflow.execute<typeof Validate>('Validate', {
      taskQueue,
      workflowId: `identifiers-validate-${randomUUID()}`,
      args: [{ database: db.name, sampleSize: 5 }],
    });
    assert.deepEqual(
      result.tables.filter((t) => t.problemCount > 0).map((t) => [t.schema, t.table, t.problems]),
      [],
    );
    assert.equal(result.tables.length, SPECS.length);
    for (const t of result.tables) {
      assert.equal(t.rows, OLD_ROWS, `${t.schema}|${t.table}`);
      assert.ok(t.sampled > 0, `${t.schema}|${t.table}: nothing sampled`);
      done.validated++;
    }
  });

  it('restores every table into a side table byte for byte (md5 of every row as text)', async () => {
    const pending = [...SPECS];
    const failures: string[] = [];
    const runner = async () => {
      for (let s = pending.shift(); s; s = pending.shift()) {
        const result: RestoreResult = await worker.client.workflow.execute<typeof Restore>(
          'Restore',
          {
            taskQueue,
            workflowId: `identifiers-restore-${randomUUID()}`,
            args: [{ ...refOf(s), targetTable: sideName(s), conflict: 'fail' }],
          },
        );
        const got = await digest(side(s), s);
        if (result.outcome !== 'restored' || result.rows !== OLD_ROWS || got !== expected.get(s))
          failures.push(
            `${show(s)}: ${result.outcome}, ${'rows' in result ? result.rows : '?'} rows, md5 ${got} vs ${expected.get(s)}`,
          );
        else done.restored++;
      }
    };
    await Promise.all([runner(), runner(), runner()]);
    assert.deepEqual(failures, []);
  });

  it('lets the CLI name a table whose schema or name holds a dot without mixing it up with another', async () => {
    const file = writeConfigFile(configInput);
    for (const [filter, expectedTable] of [
      ['"a.b".c', SPECS[0]!],
      ['a."b.c"', SPECS[1]!],
      ['"a.b"."c"', SPECS[0]!],
      ['b.c', SPECS[1]!],
      ['public."a.b"', SPECS[2]!],
      ['"say ""hi"""', SPECS[6]!],
    ] as [string, Spec][]) {
      const { code, stdout, stderr } = await runMain([
        'restore',
        '--config',
        file,
        '-d',
        db.name,
        '-t',
        filter,
        '--restore-all',
        '--target-table',
        sideName(expectedTable),
        '--dry-run',
      ]);
      assert.equal(code, 0, `${filter}: ${stderr}${stdout}`);
      assert.match(
        stdout,
        new RegExp(
          `restore into ${db.name} ${escape(expectedTable.schema)}\\.${escape(sideName(expectedTable))}: `,
        ),
        filter,
      );
    }
    const ambiguous = await runMain(['validate', '--config', file, '-d', db.name, '-t', 'a.b.c']);
    assert.equal(ambiguous.code, 2, ambiguous.stderr + ambiguous.stdout);
    assert.match(ambiguous.stderr, /^error: table "a\.b\.c" is ambiguous in database "\S+": /);
    assert.match(ambiguous.stderr, /"a\.b"\.c/);
    assert.match(ambiguous.stderr, /a\."b\.c"/);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
