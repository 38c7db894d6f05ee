import assert from 'node:assert/strict';
import { configDigest, parseConfig } from '../../src/config';
import { canonicalJson } from '../../src/config/digest';
import { commandLine } from '../../src/app/cli/run-metadata';
import { emptyTotals, type ArchiveProgress } from '../../src/shared/archive-types';
import {
  archiveCurrentDetails,
  archiveEndDetails,
  archiveTableOutcome,
  runMemo,
  staticDetails,
} from '../../src/shared/run-metadata';
import { RUN_OUTCOMES } from '../../src/shared/search-attributes';

const CONFIG = `
version: "2.0"
temporal:
  address: 127.0.0.1:7233
s3:
  bucket: archive
  region: us-east-1
databases:
  - name: app
    host: db.example.com
    user: archiver
    password_env: APP_DB_PASSWORD
    tables:
      - name: audit_log
        timestamp_column: created_at
        primary_key: id
`;

/** The same settings, written in another order, with other quoting and a comment. */
const SAME_SETTINGS = `
# the app's audit tables
databases:
  - tables:
      - primary_key: "id"
        timestamp_column: created_at
        name: audit_log
    password_env: APP_DB_PASSWORD
    user: archiver
    host: "db.example.com"
    name: app
s3:
  region: us-east-1
  bucket: "archive"
version: "2.0"
`;

describe('config digest', () => {
  it('is the same for the same settings, whatever their order, quoting or comments', () => {
    const a = configDigest(parseConfig(CONFIG, 'a.yaml', {}));
    const b = configDigest(parseConfig(SAME_SETTINGS, 'b.yaml', {}));
    assert.match(a, /^sha256:[0-9a-f]{64}$/);
    assert.equal(a, b);
  });

  it('changes when a setting changes', () => {
    const a = configDigest(parseConfig(CONFIG, 'a.yaml', {}));
    const b = configDigest(
      parseConfig(
        CONFIG.replace('name: audit_log', 'name: audit_log\n        retention_days: 30'),
        'b.yaml',
        {},
      ),
    );
    assert.notEqual(a, b);
  });

  it('leaves out where Temporal is, which the environment overrides per host', () => {
    const a = configDigest(parseConfig(CONFIG, 'a.yaml', {}));
    const b = configDigest(
      parseConfig(CONFIG, 'a.yaml', { TEMPORAL_ADDRESS: 'temporal.prod:7233' }),
    );
    assert.equal(a, b);
  });

  it('leaves out values under keys that hold secrets, keeps the names of where secrets are', () => {
    const json = canonicalJson({ b: { password: 'hunter2', password_env: 'PW' }, a: 1 });
    assert.equal(json, '{"a":1,"b":{"password_env":"PW"}}');
  });
});

describe('run metadata', () => {
  it('rebuilds the command line from the options, quoting what a shell would split', () => {
    assert.equal(
      commandLine('hold place', {
        table: 'public.audit_log',
        reason: "case 12: Bob's request",
        'dry-run': false,
        all: true,
        hold: ['a', 'b'],
        limit: 5,
        database: undefined,
      }),
      "audit-archiver hold place --table public.audit_log --reason 'case 12: Bob'\\''s request' --all --hold a --hold b --limit 5",
    );
  });

  it('writes static details as a markdown list, leaving out what is not known', () => {
    assert.equal(
      staticDetails({
        scope: 'app public.audit_log',
        command: 'audit-archiver archive',
        memo: { configDigest: 'sha256:ab', startedBy: 'audit-archiver CLI (ops@bastion)' },
      }),
      '- **Scope:** app public.audit_log\n- **Started with:** audit-archiver archive\n- **Started by:** audit-archiver CLI (ops@bastion)',
    );
    assert.deepEqual(runMemo({ configDigest: 'sha256:ab', startedBy: undefined }), {
      configDigest: 'sha256:ab',
    });
  });

  it('says in the current details the day, the rows so far, and what throttles the run', () => {
    const progress: ArchiveProgress = {
      table: 'app public.audit_log',
      state: 'archiving',
      cutoff: '2026-09-01T00:00:00.000Z',
      currentDay: '2026-08-30',
      lastError: null,
      totals: { ...emptyTotals(), rowsArchived: 12_345, batches: 3 },
      batchSize: 5000,
    };
    assert.equal(
      archiveCurrentDetails(progress),
      'Archiving (day 2026-08-30): 12,345 rows archived in 3 batches, 5,000 rows per batch\n\nCutoff: rows older than 2026-09-01T00:00:00.000Z',
    );
    const throttled = archiveCurrentDetails({
      ...progress,
      state: 'throttled',
      throttledBy: ['replica lag'],
      throttledUntil: '2026-12-03T10:00:05.000Z',
      throttleReason: 'replica lag 12 s > 5 s',
    });
    assert.match(
      throttled,
      /^Throttled by replica lag until 2026-12-03T10:00:05.000Z: replica lag 12 s > 5 s; 12,345 rows archived in 3 batches\n/,
    );
  });

  it('ends with the outcome in words: nothing-to-archive when no row moved', () => {
    const archived = {
      outcome: 'archived' as const,
      run: 'r',
      cutoff: '2026-09-01T00:00:00.000Z',
      schemaChanged: false,
      skipped: { nullKey: 0, outOfRange: 0 },
      ...emptyTotals(),
    };
    assert.equal(archiveTableOutcome(archived), 'nothing-to-archive');
    assert.equal(
      archiveEndDetails({ ...archived, rowsArchived: 1200, rowsDeleted: 1200, objects: 2 }),
      'Outcome: archived. 1,200 rows archived in 2 objects, 1,200 deleted\n\nCutoff: rows older than 2026-09-01T00:00:00.000Z',
    );
    assert.equal(
      archiveEndDetails({ outcome: 'locked', heldBy: 'archive/app/public.audit_log' }),
      'Outcome: locked. Another run holds the table: archive/app/public.audit_log',
    );
  });

  it('has one word per outcome, so a query matches it exactly', () => {
    for (const outcome of RUN_OUTCOMES) assert.match(outcome, /^[a-z-]+$/);
    assert.equal(new Set(RUN_OUTCOMES).size, RUN_OUTCOMES.length);
  });
});
