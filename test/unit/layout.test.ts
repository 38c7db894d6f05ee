import assert from 'node:assert/strict';
import { keySegment, schemaSnapshotKey, tablePrefix } from '../../src/archive/layout';
import { schemaHash } from '../../src/archive/schema-snapshot';
import { quoteIdent, qualifiedName } from '../../src/postgres/identifiers';

describe('bucket layout', () => {
  it('places a table under {prefix}{database}/{schema}.{table}/', () => {
    assert.equal(
      tablePrefix({ prefix: 'archives/', database: 'app', schema: 'public', table: 'audit_log' }),
      'archives/app/public.audit_log/',
    );
  });

  it('percent-encodes the characters that would change the key structure', () => {
    assert.equal(keySegment('a/b%c\nd'), 'a%2Fb%25c%0Ad');
    assert.equal(keySegment('Audit Log ü'), 'Audit Log ü');
  });

  it('addresses schema snapshots by their hash', () => {
    assert.equal(
      schemaSnapshotKey({ prefix: '', database: 'db', schema: 's', table: 't' }, 'abc'),
      'db/s.t/_schema/abc.json',
    );
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
