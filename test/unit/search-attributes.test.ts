import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { SEARCH_ATTRIBUTE_KEYS } from '../../src/shared/search-attributes';

describe('search attributes', () => {
  it('are registered by the local stack exactly as the workflows use them', () => {
    const lib = readFileSync(path.join(__dirname, '..', '..', 'temporal', 'lib.sh'), 'utf8');
    const declared = /SEARCH_ATTRIBUTES=\(([^)]*)\)/.exec(lib)?.[1]?.trim().split(/\s+/) ?? [];
    assert.deepEqual(declared.sort(), SEARCH_ATTRIBUTE_KEYS.map((k) => `${k.name}=Keyword`).sort());
  });
});
