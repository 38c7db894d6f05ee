import assert from 'node:assert/strict';
import { archiveTableWorkflowId } from '../../src/shared/archive-types';
import { nameSegment, namesOfTablePath, tablePath } from '../../src/shared/names';
import { restoreWorkflowId } from '../../src/shared/restore-types';
import {
  dataKeyOfSidecar,
  dataObjectKey,
  dayOfKey,
  deleteIntentKey,
  deletionManifestKey,
  deletionReceiptKey,
  manifestKey,
  rowVersionsKey,
  schemaSnapshotKey,
  tablePrefix,
} from '../../src/store/layout';
import { schemaHash } from '../../src/archive/schema-snapshot';
import { quoteIdent, qualifiedName } from '../../src/postgres/identifiers';

/**
 * Names PostgreSQL allows that a careless layout would confuse: dots (the schema.table
 * separator), slashes, the escape character, quotes, spaces, control characters, unicode,
 * case, and the longest names.
 */
const TRICKY_NAMES = [
  'a',
  'a.b',
  'b.c',
  'a.b.c',
  '.',
  '..',
  'a/b',
  '/',
  '%',
  '%2E',
  '%2F',
  'a%2Eb',
  'We"ird',
  "it's",
  'with space',
  ' leading',
  'trailing ',
  'tab\there',
  'new\nline',
  'Ünïcödé',
  '表',
  'emoji 🎉',
  'UPPER',
  'upper',
  'select',
  'x'.repeat(63),
  '.'.repeat(63),
  'a\u0001b',
  '_schema',
  'year=2024',
];

describe('bucket layout', () => {
  it('places a table under {prefix}{database}/{schema}.{table}/', () => {
    assert.equal(
      tablePrefix({ prefix: 'archives/', database: 'app', schema: 'public', table: 'audit_log' }),
      'archives/app/public.audit_log/',
    );
  });

  it('percent-encodes the characters that would change the key structure, and nothing else', () => {
    assert.equal(nameSegment('a/b%c\nd.e'), 'a%2Fb%25c%0Ad%2Ee');
    assert.equal(nameSegment('Audit Log ü'), 'Audit Log ü');
  });

  it('keeps two tables apart whose dotted names would read alike ("a.b"."c" and "a"."b.c")', () => {
    const one = { prefix: '', database: 'db', schema: 'a.b', table: 'c' };
    const other = { prefix: '', database: 'db', schema: 'a', table: 'b.c' };
    assert.notEqual(tablePrefix(one), tablePrefix(other));
    assert.notEqual(archiveTableWorkflowId(one), archiveTableWorkflowId(other));
    assert.notEqual(restoreWorkflowId(one), restoreWorkflowId(other));
  });

  it(`maps every (database, schema, table) of ${TRICKY_NAMES.length ** 3} tricky triples to its own prefix and workflow id, and back`, () => {
    const prefixes = new Map<string, string>();
    const ids = new Set<string>();
    for (const database of TRICKY_NAMES)
      for (const schema of TRICKY_NAMES)
        for (const table of TRICKY_NAMES) {
          const names = { database, schema, table };
          const path = tablePath(names);
          const prefix = tablePrefix({ prefix: 'p/', ...names });
          assert.deepEqual(namesOfTablePath(path), names, `${path} reads back`);
          assert.equal(prefixes.get(prefix), undefined, `${prefix} is taken twice`);
          prefixes.set(prefix, path);
          ids.add(archiveTableWorkflowId(names));
          // No segment is "." or "..", which stores treat as path steps.
          for (const segment of prefix.split('/')) assert.ok(segment !== '.' && segment !== '..');
        }
    assert.equal(ids.size, TRICKY_NAMES.length ** 3);
  });

  it('addresses schema snapshots by their hash', () => {
    assert.equal(
      schemaSnapshotKey({ prefix: '', database: 'db', schema: 's', table: 't' }, 'abc'),
      'db/s.t/_schema/abc.json',
    );
  });

  it('finds the data object of each sidecar document', () => {
    const data = dataObjectKey(
      { prefix: 'p/', database: 'd', schema: 's', table: 't' },
      '2024-02-29',
      'run',
      7,
    );
    for (const sidecar of [
      manifestKey(data),
      rowVersionsKey(data),
      deletionManifestKey(data),
      deletionReceiptKey(data),
      deleteIntentKey(data, '123'),
    ])
      assert.equal(dataKeyOfSidecar(sidecar), data);
    assert.equal(dayOfKey(data), '2024-02-29');
  });
});

describe('schema hash', () => {
  const shape = {
    columns: [
      { name: 'id', type: 'bigint', nullable: false },
      { name: 'created_at', type: 'timestamp with time zone', nullable: false },
    ],
    primaryKey: ['id'],
  };

  it('is the same for the same shape', () => {
    assert.equal(schemaHash(structuredClone(shape)), schemaHash(shape));
    assert.match(schemaHash(shape), /^[0-9a-f]{64}$/);
  });

  it('changes with a type, a nullability, the column order or the key', () => {
    const variants = [
      { ...shape, columns: [{ ...shape.columns[0]!, type: 'integer' }, shape.columns[1]!] },
      { ...shape, columns: [{ ...shape.columns[0]!, nullable: true }, shape.columns[1]!] },
      { ...shape, columns: [shape.columns[1]!, shape.columns[0]!] },
      { ...shape, primaryKey: ['id', 'created_at'] },
    ];
    const hashes = new Set([shape, ...variants].map(schemaHash));
    assert.equal(hashes.size, 5);
  });
});

describe('identifier quoting', () => {
  it('quotes every identifier and doubles embedded quotes', () => {
    assert.equal(quoteIdent('audit_log'), '"audit_log"');
    assert.equal(quoteIdent('we"ird; drop table x'), '"we""ird; drop table x"');
    assert.equal(qualifiedName('My Schema', 'T'), '"My Schema"."T"');
  });

  it('refuses a NUL character, which PostgreSQL cannot store in a name', () => {
    assert.throws(() => quoteIdent('a\u0000b'));
  });
});
