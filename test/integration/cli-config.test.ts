import assert from 'node:assert/strict';
import { runCli } from '../helpers/cli';
import { testConfigInput, writeConfigFile } from '../helpers/config';

// What an operator sees for a broken configuration file: one line naming file and path,
// exit code 2, no stack trace, nothing touched (the config is read before anything connects).
describe('CLI: configuration errors', function () {
  this.timeout(30_000);
  const good = () => testConfigInput({ database: 'app', prefix: 'cli-config/' });

  const cases: [string, () => string, RegExp][] = [
    [
      'a wrong type',
      () =>
        writeConfigFile({ ...good(), defaults: { retention_days: 'ninety' as unknown as number } }),
      /: defaults\.retention_days: expected number, got "ninety"$/,
    ],
    [
      'an unknown key',
      () => writeConfigFile({ ...good(), databasez: [] } as ReturnType<typeof good>),
      /: unknown key "databasez" \(did you mean "databases"\?\)$/,
    ],
    [
      'a missing field',
      () => {
        const config = good();
        delete (config.databases[0]!.tables[0] as { primary_key?: string }).primary_key;
        return writeConfigFile(config);
      },
      /: databases\[0\]\.tables\[0\]: primary_key is required$/,
    ],
    [
      'bad YAML',
      () => writeConfigFile('version: "2.0"\ns3: [unclosed\n'),
      /:\d+:\d+: invalid YAML: /,
    ],
  ];

  for (const [what, write, expected] of cases) {
    it(`reports ${what} in one line naming file and path, exit 2`, async () => {
      const file = write();
      const { code, stdout, stderr } = await runCli(['doctor', '--config', file]);
      assert.equal(code, 2);
      assert.equal(stdout, '');
      const lines = stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, stderr);
      assert.ok(lines[0]!.startsWith(`error: ${file}`), lines[0]);
      assert.match(lines[0]!, expected);
      assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
    });
  }

  it('says when the config file does not exist', async () => {
    const { code, stderr } = await runCli([
      'worker',
      '--config',
      '/nonexistent/audit-archiver.yaml',
    ]);
    assert.equal(code, 2);
    assert.equal(stderr, 'error: /nonexistent/audit-archiver.yaml: file not found\n');
  });

  it('rejects an unknown command with usage help, exit 2', async () => {
    const { code, stderr } = await runCli(['archiv']);
    assert.equal(code, 2);
    assert.match(stderr, /unknown command 'archiv'/);
  });

  it('prints help for every command', async () => {
    for (const command of ['doctor', 'worker', 'snapshot-schema']) {
      const { code, stdout } = await runCli([command, '--help']);
      assert.equal(code, 0);
      assert.match(stdout, new RegExp(`Usage: audit-archiver ${command} \\[options\\]`));
      assert.match(stdout, /--config <file>/);
    }
  });
});
