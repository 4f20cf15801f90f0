// The error codes of the store: STORE_ERROR_CODES is exactly the errors table
// of docs/store.md, so a code cannot be added to one and forgotten in the
// other (the hostile-arguments property checks every rejection against the
// list); invalidArgument() makes the TypeError/RangeError of API misuse.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { invalidArgument, STORE_ERROR_CODES, StoreError } from '../../engine/store_error.js';

/** The source tree's docs/store.md (tests run from dist/test/engine). */
const STORE_DOC_URL = new URL('../../../docs/store.md', import.meta.url);

function documentedCodes(): string[] {
  const text = readFileSync(STORE_DOC_URL, 'utf8');
  const section = text.slice(text.indexOf('\n## Errors'));
  const table = section.slice(0, section.indexOf('\n## ', 1));
  return [...table.matchAll(/^\| `(ERR_[A-Z_]+)` \|/gm)].map((match) => match[1]);
}

describe('STORE_ERROR_CODES', () => {
  it("lists exactly the codes of docs/store.md's errors table, in its order", () => {
    assert.deepEqual(documentedCodes(), [...STORE_ERROR_CODES]);
  });

  it('has no duplicates, and every code is spelled ERR_…', () => {
    assert.equal(new Set(STORE_ERROR_CODES).size, STORE_ERROR_CODES.length);
    for (const code of STORE_ERROR_CODES) assert.match(code, /^ERR_[A-Z_]+$/);
  });
});

describe('invalidArgument()', () => {
  it('makes a TypeError or RangeError coded ERR_INVALID_ARG, the one code that is not a StoreError', () => {
    const type = invalidArgument('bad type');
    const range = invalidArgument('bad range', 'range');
    assert.ok(type instanceof TypeError && !(type instanceof StoreError));
    assert.ok(range instanceof RangeError);
    assert.equal((type as { code?: string }).code, 'ERR_INVALID_ARG');
    assert.equal((range as { code?: string }).code, 'ERR_INVALID_ARG');
  });
});
