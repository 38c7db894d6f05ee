import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  loadConfig,
  parseConfig,
  selectTables,
  findTable,
  databasePassword,
} from '../../src/config';
import { ConfigError, SecretMissingError, TableNotConfiguredError } from '../../src/shared/errors';

// The seed's format as written, with every section the schema knows.
const SEED = `
version: "2.0"
s3:
  endpoint: null
  bucket: company-audit-archives
  prefix: audit-archives/
  region: us-west-2
  storage_class: STANDARD_IA
defaults:
  retention_days: 90
  batch_size: 10000
databases:
  - name: production
    host: db.example.com
    port: 5432
    user: archiver
    password_env: PROD_DB_PASSWORD
    tables:
      - name: audit_logs
        schema: public
        timestamp_column: created_at
        primary_key: id
        retention_days: 365
      - name: user_events
        schema: analytics
        timestamp_column: event_time
        primary_key: event_id
`;

function errorOf(text: string, file = 'config.yaml'): string {
  try {
    parseConfig(text, file, {});
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.message;
  }
  assert.fail('the configuration was accepted');
}

describe('configuration', () => {
  it("accepts the seed's format as written and fills in defaults", () => {
    const config = parseConfig(SEED, 'config.yaml', {});
    assert.equal(config.s3.endpoint, null);
    assert.equal(config.s3.storage_class, 'STANDARD_IA');
    assert.equal(config.temporal.address, '127.0.0.1:7233');
    assert.equal(config.temporal.task_queue, 'audit-archiver');
    assert.equal(config.databases[0]!.tables[0]!.schema, 'public');
    assert.equal(config.worker.http_address, '127.0.0.1:9464');
  });

  it('lets tables inherit retention and batch size from defaults unless they set their own', () => {
    const config = parseConfig(SEED, 'config.yaml', {});
    const [auditLogs, userEvents] = selectTables(config);
    assert.equal(auditLogs!.retentionDays, 365);
    assert.equal(auditLogs!.batchSize, 10000);
    assert.equal(userEvents!.retentionDays, 90);
  });

  it('compresses at level 3 unless the defaults or the table say otherwise', () => {
    const [inherited] = selectTables(parseConfig(SEED, 'config.yaml', {}));
    assert.equal(inherited!.compressionLevel, 3);
    const tuned = SEED.replace(
      '  batch_size: 10000\n',
      '  batch_size: 10000\n  compression_level: 6\n',
    ).replace(
      '        retention_days: 365\n',
      '        retention_days: 365\n        compression_level: 1\n',
    );
    const [auditLogs, userEvents] = selectTables(parseConfig(tuned, 'config.yaml', {}));
    assert.equal(auditLogs!.compressionLevel, 1);
    assert.equal(userEvents!.compressionLevel, 6);
    assert.match(
      errorOf(
        SEED.replace('  batch_size: 10000\n', '  batch_size: 10000\n  compression_level: 0\n'),
      ),
      /^config\.yaml: defaults\.compression_level: /,
    );
  });

  it('names file, path and problem for a missing field', () => {
    const text = SEED.replace('        timestamp_column: event_time\n', '');
    assert.equal(
      errorOf(text),
      'config.yaml: databases[0].tables[1]: timestamp_column is required',
    );
  });

  it('rejects an unknown key with a hint at the nearest known one', () => {
    const text = SEED.replace(
      '  bucket: company',
      '  bucket: company-audit-archives\n  bukcet: company',
    );
    assert.equal(errorOf(text), 'config.yaml: s3: unknown key "bukcet" (did you mean "bucket"?)');
  });

  it('lists the known keys when an unknown key resembles none of them', () => {
    const text = SEED.replace('defaults:\n', 'defaults:\n  colour: blue\n');
    assert.equal(
      errorOf(text),
      'config.yaml: defaults: unknown key "colour" (expected one of: retention_days, batch_size, compression_level, pause_between_batches_ms, schema_drift, throttle)',
    );
  });

  it('reports a wrong type with the value found', () => {
    assert.equal(
      errorOf(SEED.replace('port: 5432', 'port: "5432"')),
      'config.yaml: databases[0].port: expected number, got "5432"',
    );
  });

  it('reports every problem at once, one line each', () => {
    const text = SEED.replace('port: 5432', 'port: 0').replace(
      'batch_size: 10000',
      'batch_size: -1',
    );
    const lines = errorOf(text).split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /^config\.yaml: defaults\.batch_size: /);
    assert.match(lines[1]!, /^config\.yaml: databases\[0\]\.port: /);
  });

  it('reports invalid YAML with its line and column', () => {
    assert.match(
      errorOf('version: "2.0"\ns3: {bucket: [x\n'),
      /^config\.yaml:\d+:\d+: invalid YAML: /,
    );
  });

  it('rejects duplicate keys in the YAML instead of keeping the last', () => {
    assert.match(
      errorOf(SEED.replace('  region: us-west-2', '  region: us-west-2\n  region: eu-west-1')),
      /invalid YAML: .*unique/i,
    );
  });

  it('rejects a document that is not a mapping', () => {
    assert.match(errorOf('- just\n- a list\n'), /^config\.yaml: expected a mapping/);
  });

  it('rejects an unsupported version', () => {
    assert.match(
      errorOf(SEED.replace('version: "2.0"', 'version: "1.0"')),
      /^config\.yaml: version: must be one of "2\.0"/,
    );
  });

  it('takes an unquoted `version: 2.0`, which YAML reads as a number', () => {
    assert.equal(
      parseConfig(SEED.replace('version: "2.0"', 'version: 2.0'), 'c.yaml', {}).version,
      '2.0',
    );
  });

  it('refuses the same table listed twice in a database', () => {
    const text = SEED.replace(
      'name: user_events\n        schema: analytics',
      'name: audit_logs\n        schema: public',
    );
    assert.match(
      errorOf(text),
      /databases\[0\]\.tables\[1\]\.name: table public\.audit_logs is listed twice/,
    );
  });

  it('refuses password_env and password_file together', () => {
    const text = SEED.replace(
      'password_env: PROD_DB_PASSWORD',
      'password_env: PROD_DB_PASSWORD\n    password_file: /run/secrets/pw',
    );
    assert.match(errorOf(text), /databases\[0\]: set password_env or password_file, not both/);
  });

  it('adds the missing trailing slash to the prefix', () => {
    const config = parseConfig(
      SEED.replace('prefix: audit-archives/', 'prefix: audit-archives'),
      'c.yaml',
      {},
    );
    assert.equal(config.s3.prefix, 'audit-archives/');
  });

  it('lets TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE override the file', () => {
    const config = parseConfig(SEED, 'c.yaml', {
      TEMPORAL_ADDRESS: 'temporal:7233',
      TEMPORAL_NAMESPACE: 'ops',
    });
    assert.equal(config.temporal.address, 'temporal:7233');
    assert.equal(config.temporal.namespace, 'ops');
  });

  it('says when the file does not exist', () => {
    assert.throws(() => loadConfig('/nonexistent/c.yaml', {}), {
      name: 'ConfigError',
      message: '/nonexistent/c.yaml: file not found',
    });
  });

  describe('table selection', () => {
    const config = parseConfig(SEED, 'config.yaml', {});

    it('selects by database and by schema.table or bare table name', () => {
      assert.equal(selectTables(config, { database: 'production' }).length, 2);
      assert.equal(
        selectTables(config, { table: 'analytics.user_events' })[0]!.primaryKey,
        'event_id',
      );
      assert.equal(selectTables(config, { table: 'audit_logs' })[0]!.schema, 'public');
    });

    it('refuses a filter that matches nothing instead of doing nothing', () => {
      assert.throws(() => selectTables(config, { database: 'staging' }), TableNotConfiguredError);
      assert.throws(
        () => selectTables(config, { table: 'public.user_events' }),
        TableNotConfiguredError,
      );
    });

    it('finds a table by exact reference, as workflows name it', () => {
      assert.equal(
        findTable(config, { database: 'production', schema: 'analytics', table: 'user_events' })
          .retentionDays,
        90,
      );
      assert.throws(
        () => findTable(config, { database: 'production', schema: 'public', table: 'user_events' }),
        TableNotConfiguredError,
      );
    });
  });

  describe('secrets', () => {
    const db = parseConfig(SEED, 'config.yaml', {}).databases[0]!;

    it('reads the password from the named environment variable', () => {
      assert.equal(databasePassword(db, { PROD_DB_PASSWORD: 's3cret' }), 's3cret');
    });

    it('names the variable, never a value, when it is missing', () => {
      assert.throws(
        () => databasePassword(db, {}),
        (err: Error) => {
          assert.ok(err instanceof SecretMissingError);
          assert.match(
            err.message,
            /environment variable PROD_DB_PASSWORD \(password_env\) is not set/,
          );
          return true;
        },
      );
    });

    it('reads a password file without its trailing newline', () => {
      const file = path.join(mkdtempSync(path.join(tmpdir(), 'aa-')), 'pw');
      writeFileSync(file, 'from-file\n');
      assert.equal(
        databasePassword({ ...db, password_env: undefined, password_file: file }, {}),
        'from-file',
      );
    });
  });
});
