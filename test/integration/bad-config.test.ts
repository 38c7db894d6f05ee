import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Connection, Client } from '@temporalio/client';
import type { ConfigInput } from '../../src/config/schema';
import { quoteIdent } from '../../src/postgres/identifiers';
import { createS3Client } from '../../src/store/client';
import { badConfigs } from '../helpers/bad-configs';
import { listAll } from '../helpers/bucket';
import { runCli, type CliResult } from '../helpers/cli';
import { testConfig, testConfigInput, writeConfigFile } from '../helpers/config';
import { createAuditTable, TestDatabase, withDatabase } from '../helpers/database';
import { runMain, stackLines } from '../helpers/in-process-cli';
import { BUCKET, TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE } from '../helpers/stack';

// Issue 10, "Bad input, counted": hundreds of bad configuration files, each made from a good
// one by one mutation, given to every command that reads a config; then configurations that
// parse but point at something wrong (hosts, roles, tables, columns, buckets, credentials),
// given to `doctor`. Each gets one clear message and the documented exit code, no stack
// trace, and leaves the database, the bucket and Temporal as they were.
describe('Bad input, counted: bad configurations (real stack)', function () {
  this.timeout(900_000);
  const prefix = `bad-config-${randomUUID()}/`;
  const taskQueue = `bad-config-${randomUUID()}`;
  const role = `aa_bad_input_${randomBytes(4).toString('hex')}`;
  let db: TestDatabase;
  let s3: S3Client;
  let base: ConfigInput;
  let baseline: string;
  const tally = { cases: 0, clear: 0, changed: 0 };
  let started = Date.now();

  before(async () => {
    started = Date.now();
    db = await TestDatabase.create();
    await createAuditTable(db, { rows: 30 });
    // A role that may read the table but not delete from it (the server trusts local
    // connections, so it needs no password).
    await withDatabase('postgres', (c) => c.query(`create role ${quoteIdent(role)} login`));
    await db.query(`grant select on audit_log to ${quoteIdent(role)}`);
    base = testConfigInput({ database: db.name, prefix, taskQueue });
    s3 = createS3Client(testConfig({ database: db.name, prefix }).s3);
    // Something to lose: a bad input that deleted or replaced objects would show.
    await s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}marker.txt`, Body: 'marker\n' }),
    );
    baseline = await snapshot();
  });

  after(async () => {
    const seconds = ((Date.now() - started) / 1000).toFixed(0);
    process.stdout.write(
      `      bad configurations: ${tally.cases} cases, ${tally.clear} with one clear message and the right exit code, ${tally.changed} changed anything (${seconds} s)\n`,
    );
    s3?.destroy();
    await db?.drop();
    await withDatabase('postgres', (c) => c.query(`drop role if exists ${quoteIdent(role)}`));
  });

  /** Every table of the test database (name, rows, digest of its contents) and the bucket prefix (keys, ETags). */
  async function snapshot(): Promise<string> {
    const tables = await db.query<{ schema: string; name: string }>(
      `select table_schema as schema, table_name as name from information_schema.tables
        where table_schema not in ('pg_catalog', 'information_schema') order by 1, 2`,
    );
    const contents: string[] = [];
    for (const t of tables) {
      const { digest } = await db.one<{ digest: string }>(
        `select count(*) || ' ' || md5(coalesce(string_agg(t::text, E'\\n' order by t::text), '')) as digest
           from ${quoteIdent(t.schema)}.${quoteIdent(t.name)} t`,
      );
      contents.push(`${t.schema}.${t.name} ${digest}`);
    }
    const objects = (await listAll(s3, prefix)).map((o) => `${o.key} ${o.etag}`);
    return JSON.stringify({ contents, objects });
  }

  /** Counts a case: whether its message was clear, and whether anything changed. */
  async function count(problems: string[]): Promise<string[]> {
    tally.cases++;
    const changed = (await snapshot()) !== baseline;
    if (changed) {
      tally.changed++;
      problems.push('the database or the bucket changed');
    }
    if (problems.length === 0) tally.clear++;
    return problems;
  }

  /** What is wrong with an answer that should be exactly one `error: ...` line and exit 2. */
  function oneErrorLine(result: CliResult, startsWith: string, says?: RegExp): string[] {
    const problems: string[] = [];
    const lines = result.stderr.split('\n').filter((l) => l !== '');
    if (result.code !== 2) problems.push(`exit code ${result.code}, expected 2`);
    if (result.stdout !== '') problems.push(`printed on stdout: ${result.stdout}`);
    if (stackLines(result.stderr).length > 0) problems.push('printed a stack trace');
    if (lines.length !== 1) problems.push(`${lines.length} stderr lines, expected 1`);
    const line = lines[0] ?? '';
    if (!line.startsWith(startsWith)) problems.push(`does not start with ${startsWith}`);
    else if (says && !says.test(line.slice(startsWith.length)))
      problems.push(`does not say ${says}`);
    return problems.length === 0 ? [] : [...problems, `stderr: ${result.stderr}`];
  }

  const commands = (file: string): string[][] => [
    ['archive', '--config', file, '--dry-run'],
    ['doctor', '--config', file],
    ['validate', '--config', file],
    ['restore', '--config', file, '-d', 'app', '-t', 'audit_log', '--restore-all'],
    ['schedule', 'apply', '--config', file],
  ];

  it('answers each of 200+ generated bad configuration files with one error line naming the file and the path, exit 2, no stack trace, for archive --dry-run, doctor, validate, restore and schedule apply, and changes nothing', async () => {
    const cases = badConfigs(base);
    assert.ok(cases.length >= 200, `${cases.length} cases`);
    assert.equal(new Set(cases.map((c) => c.text)).size, cases.length, 'every case is distinct');
    const failures: string[] = [];
    for (const c of cases) {
      const file = writeConfigFile(c.text);
      const problems: string[] = [];
      for (const args of commands(file)) {
        const result = await runMain(args);
        problems.push(
          ...oneErrorLine(result, `error: ${file}${c.at}`, c.says).map((p) => `${args[0]}: ${p}`),
        );
      }
      const wrong = await count(problems);
      if (wrong.length > 0) failures.push(`${c.name}:\n  ${wrong.join('\n  ')}`);
    }
    assert.deepEqual(failures, []);
  });

  /** A configuration that parses but points at something that is not there or not allowed. */
  interface RuntimeCase {
    name: string;
    edit?: (c: ConfigInput) => void;
    env?: Record<string, string | undefined>;
    /** The one FAIL line doctor prints. */
    fail: RegExp;
  }
  const db0 = (c: ConfigInput) => c.databases[0]!;
  const table0 = (c: ConfigInput) => c.databases[0]!.tables[0]!;
  const unset = `AA_BAD_INPUT_UNSET_${randomBytes(4).toString('hex').toUpperCase()}`;
  const runtime: RuntimeCase[] = [
    {
      name: 'a database host name that does not resolve',
      edit: (c) => (db0(c).host = 'aa-no-such-host.invalid'),
      fail: /^FAIL {2}database \S+ \(postgres@aa-no-such-host\.invalid:5432\/\S+\): host name not found$/,
    },
    {
      name: 'a database port nobody listens on',
      edit: (c) => (db0(c).port = 1),
      fail: /^FAIL {2}database \S+ \(postgres@127\.0\.0\.1:1\/\S+\): connection refused/,
    },
    {
      name: 'a database host that does not answer (TEST-NET address)',
      edit: (c) => (db0(c).host = '192.0.2.1'),
      // Timed out where the address is routed; refused at once where the network says so.
      fail: /^FAIL {2}database \S+ \(postgres@192\.0\.2\.1:5432\/\S+\): connection (timed out|refused)/,
    },
    {
      name: 'a database that does not exist on the server',
      edit: (c) => (db0(c).dbname = 'aa_no_such_database'),
      fail: /^FAIL {2}database \S+ \(postgres@127\.0\.0\.1:5432\/aa_no_such_database\): database does not exist$/,
    },
    {
      name: 'a role that does not exist',
      edit: (c) => (db0(c).user = 'aa_no_such_role'),
      fail: /^FAIL {2}database \S+ \(aa_no_such_role@[^)]+\): the server refused the connection: role "aa_no_such_role" does not exist$/,
    },
    {
      name: 'a password_env naming a variable that is not set',
      edit: (c) => (db0(c).password_env = unset),
      env: { [unset]: undefined },
      fail: new RegExp(
        `^FAIL {2}database \\S+ \\([^)]+\\): database "\\S+": environment variable ${unset} \\(password_env\\) is not set$`,
      ),
    },
    {
      name: 'a password_file that does not exist',
      edit: (c) => (db0(c).password_file = '/nonexistent/aa-password'),
      fail: /^FAIL {2}database \S+ \([^)]+\): database "\S+": cannot read password_file \/nonexistent\/aa-password \(ENOENT\)$/,
    },
    {
      name: 'a role without the DELETE privilege',
      edit: (c) => (db0(c).user = role),
      fail: /^FAIL {2}table \S+ public\.audit_log privileges: .*DELETE/,
    },
    {
      name: 'a table that does not exist',
      edit: (c) => (table0(c).name = 'no_such_table'),
      fail: /^FAIL {2}table \S+ public\.no_such_table: does not exist/,
    },
    {
      name: 'a schema that does not exist',
      edit: (c) => (table0(c).schema = 'no_such_schema'),
      fail: /^FAIL {2}table \S+ no_such_schema\.audit_log: does not exist/,
    },
    {
      name: 'a timestamp column of type text',
      edit: (c) => (table0(c).timestamp_column = 'actor'),
      fail: /^FAIL {2}table \S+ public\.audit_log timestamp_column: column "actor" is text, expected timestamp/,
    },
    {
      name: 'a timestamp column that does not exist',
      edit: (c) => (table0(c).timestamp_column = 'created'),
      fail: /^FAIL {2}table \S+ public\.audit_log timestamp_column: .*"created"/,
    },
    {
      name: 'a primary key column that is not unique',
      edit: (c) => (table0(c).primary_key = 'actor'),
      fail: /^FAIL {2}table \S+ public\.audit_log primary_key: .*"actor"/,
    },
    {
      name: 'a primary key column that does not exist',
      edit: (c) => (table0(c).primary_key = 'uuid'),
      fail: /^FAIL {2}table \S+ public\.audit_log primary_key: .*"uuid"/,
    },
    {
      name: 'an S3 endpoint nobody listens on',
      edit: (c) => (c.s3.endpoint = 'http://127.0.0.1:1'),
      fail: /^FAIL {2}bucket s3:\/\/\S+ \(http:\/\/127\.0\.0\.1:1\): cannot reach the bucket: connection refused/,
    },
    {
      name: 'an S3 endpoint host name that does not resolve',
      edit: (c) => (c.s3.endpoint = 'http://aa-no-such-host.invalid:9000'),
      fail: /^FAIL {2}bucket s3:\/\/\S+ \(http:\/\/aa-no-such-host\.invalid:9000\): cannot reach the bucket: .*(not found|ENOTFOUND)/,
    },
    {
      name: 'an https S3 endpoint on a plain http server',
      edit: (c) => (c.s3.endpoint = c.s3.endpoint!.replace('http:', 'https:')),
      fail: /^FAIL {2}bucket s3:\/\/\S+ \(https:\/\/[^)]+\): cannot reach the bucket: /,
    },
    {
      name: 'a bucket that does not exist',
      edit: (c) => (c.s3.bucket = `aa-no-such-bucket-${randomBytes(4).toString('hex')}`),
      fail: /^FAIL {2}bucket s3:\/\/aa-no-such-bucket-\S+ \([^)]+\): cannot reach the bucket: the bucket does not exist$/,
    },
    {
      name: 'a wrong S3 secret key',
      env: { AWS_SECRET_ACCESS_KEY: 'not-the-secret' },
      fail: /^FAIL {2}bucket s3:\/\/\S+ \([^)]+\): cannot reach the bucket: (credentials rejected|access denied) \(check AWS_ACCESS_KEY_ID \/ AWS_SECRET_ACCESS_KEY/,
    },
    {
      name: 'an S3 access key the store does not know',
      env: { AWS_ACCESS_KEY_ID: 'AANOSUCHKEY' },
      fail: /^FAIL {2}bucket s3:\/\/\S+ \([^)]+\): cannot reach the bucket: (credentials rejected|access denied) \(check AWS_ACCESS_KEY_ID \/ AWS_SECRET_ACCESS_KEY/,
    },
    {
      name: 'a Temporal address nobody listens on',
      edit: (c) => (c.temporal!.address = '127.0.0.1:1'),
      fail: /^FAIL {2}temporal 127\.0\.0\.1:1 namespace \S+: cannot connect/,
    },
    {
      name: 'a Temporal namespace that does not exist',
      edit: (c) => (c.temporal!.namespace = 'aa-no-such-namespace'),
      fail: /^FAIL {2}temporal \S+ namespace aa-no-such-namespace: .*not found/i,
    },
  ];

  for (const c of runtime) {
    it(`doctor: ${c.name} is one FAIL line naming it, exit 1, no stack trace, nothing changed`, async () => {
      const config = structuredClone(base);
      c.edit?.(config);
      const result = await runMain(['doctor', '--config', writeConfigFile(config)], c.env);
      const lines = result.stdout.trimEnd().split('\n');
      const failed = lines.filter((l) => l.startsWith('FAIL'));
      const problems: string[] = [];
      if (result.code !== 1) problems.push(`exit code ${result.code}, expected 1`);
      if (failed.length !== 1) problems.push(`${failed.length} FAIL lines, expected 1`);
      else if (!c.fail.test(failed[0]!)) problems.push(`the FAIL line does not match ${c.fail}`);
      if (result.stderr !== '') problems.push(`stderr: ${result.stderr}`);
      if (stackLines(result.stdout).length > 0) problems.push('printed a stack trace');
      if (!/^\d+ of \d+ checks failed$/.test(lines.at(-1) ?? '')) problems.push('no summary line');
      assert.deepEqual(await count(problems), [], result.stdout);
    });
  }

  /** Commands that name what the config does not list, or give options that make no sense. */
  const names: { name: string; args: (file: string) => string[]; says: RegExp }[] = [
    {
      name: 'archive --dry-run -d naming a database the config does not list',
      args: (f) => ['archive', '--config', f, '--dry-run', '-d', 'no_such_db'],
      says: /^error: database "no_such_db" is not in the config \(configured: \S+\)$/,
    },
    {
      name: 'archive --dry-run -t naming a table the config does not list',
      args: (f) => ['archive', '--config', f, '--dry-run', '-t', 'public.no_such_table'],
      says: /^error: table "public\.no_such_table" is not configured in any database$/,
    },
    {
      name: 'doctor -t naming a table the config does not list',
      args: (f) => ['doctor', '--config', f, '-t', 'no_such_table'],
      says: /^error: table "no_such_table" is not configured in any database$/,
    },
    {
      name: 'validate -d naming a database the config does not list',
      args: (f) => ['validate', '--config', f, '-d', 'no_such_db'],
      says: /^error: database "no_such_db" is not in the config/,
    },
    {
      name: 'restore -t naming a table the config does not list',
      args: (f) => ['restore', '--config', f, '-d', db.name, '-t', 'no_such_table'],
      says: /^error: table "no_such_table" is not configured in database "\S+"$/,
    },
    {
      name: 'restore without -d and -t',
      args: (f) => ['restore', '--config', f, '--restore-all'],
      says: /^error: restore: --database and --table name the archived table$/,
    },
    {
      name: 'restore with an impossible --start-date',
      args: (f) => [
        'restore',
        '--config',
        f,
        '-d',
        db.name,
        '-t',
        'audit_log',
        '--start-date',
        '2024-13-01',
      ],
      says: /^error: restore: --start-date 2024-13-01: expected a date as YYYY-MM-DD$/,
    },
    {
      name: 'restore with an unknown --conflict-strategy',
      args: (f) => [
        'restore',
        '--config',
        f,
        '-d',
        db.name,
        '-t',
        'audit_log',
        '--restore-all',
        '--conflict-strategy',
        'merge',
      ],
      says: /^error: restore: --conflict-strategy merge: expected one of skip, overwrite, fail$/,
    },
    {
      name: 'a configuration file that does not exist',
      args: () => ['doctor', '--config', '/nonexistent/aa-bad-input.yaml'],
      says: /^error: \/nonexistent\/aa-bad-input\.yaml: file not found$/,
    },
  ];

  for (const c of names) {
    it(`${c.name}: one error line, exit 2, nothing changed`, async () => {
      const result = await runMain(c.args(writeConfigFile(base)));
      assert.deepEqual(await count(oneErrorLine(result, '', c.says)), []);
    });
  }

  it('validate with a reversed day range: the usage error and a help hint, exit 2, nothing changed', async () => {
    const result = await runMain([
      'validate',
      '--config',
      writeConfigFile(base),
      '--start-date',
      '2024-02-02',
      '--end-date',
      '2024-02-01',
    ]);
    const problems: string[] = [];
    if (result.code !== 2) problems.push(`exit code ${result.code}`);
    if (
      result.stderr !==
      'error: --start-date 2024-02-02 is after --end-date 2024-02-01\n(add --help for usage)\n'
    )
      problems.push(`stderr: ${result.stderr}`);
    assert.deepEqual(await count(problems), []);
  });

  it('gives the same exit code and message from the real binary for a sample of 10 cases, with no stack trace', async () => {
    const generated = badConfigs(base);
    const pick = (name: string) => {
      const found = generated.find((c) => c.name === name);
      assert.ok(found, name);
      return found;
    };
    const sample = [
      pick('defaults.retention_days of the wrong type ("ten")'),
      pick('a near-miss typo "timestamp_colum" at databases[0].tables[0]'),
      pick('the required section version missing'),
      pick('databases[0].tables[0].name holding a NUL character'),
      pick('YAML: tab indentation'),
      pick('YAML: an alias without its anchor'),
      pick('a root that is a list'),
      pick('s3.endpoint not http or https'),
    ];
    const problems: string[] = [];
    for (const c of sample) {
      const args = ['doctor', '--config', writeConfigFile(c.text)];
      const [real, inProcess] = [await runCli(args, {}, 60_000), await runMain(args)];
      if (real.code !== 2 || real.stderr !== inProcess.stderr || stackLines(real.stderr).length)
        problems.push(`${c.name}: exit ${real.code}, stderr ${real.stderr}`);
    }
    const runtimeSample = [runtime[1]!, runtime[18]!];
    for (const c of runtimeSample) {
      const config = structuredClone(base);
      c.edit?.(config);
      const real = await runCli(['doctor', '--config', writeConfigFile(config)], c.env, 60_000);
      const failed = real.stdout.split('\n').filter((l) => l.startsWith('FAIL'));
      if (real.code !== 1 || failed.length !== 1 || !c.fail.test(failed[0]!) || real.stderr)
        problems.push(`${c.name}: exit ${real.code}, stdout ${real.stdout}, stderr ${real.stderr}`);
    }
    assert.equal(sample.length + runtimeSample.length, 10);
    assert.deepEqual(problems, []);
    assert.equal(await snapshot(), baseline, 'nothing changed');
  });

  it('started no workflow on the task queue of any case', async () => {
    const connection = await Connection.connect({ address: TEMPORAL_ADDRESS });
    try {
      const client = new Client({ connection, namespace: TEMPORAL_NAMESPACE });
      const { count: started } = await client.workflow.count(`TaskQueue = '${taskQueue}'`);
      assert.equal(started, 0);
    } finally {
      await connection.close();
    }
  });
});
