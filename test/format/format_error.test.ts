// FormatError: says which structure, which block (when one is to blame) and why.
import assert from 'node:assert/strict';

import { FormatError } from '../../format/format_error.js';

describe('FormatError', () => {
  it('names the structure, the block and the reason in its message', () => {
    const error = new FormatError('superblock', 'checksum mismatch', 1);
    assert.equal(error.message, 'superblock block 1: checksum mismatch');
    assert.equal(error.structure, 'superblock');
    assert.equal(error.blockIndex, 1);
    assert.equal(error.reason, 'checksum mismatch');
    assert.equal(error.name, 'FormatError');
    assert.ok(error instanceof Error);
  });

  it('leaves the block out when none is to blame, and keeps block 0', () => {
    const unplaced = new FormatError('record', 'truncated');
    assert.equal(unplaced.message, 'record: truncated');
    assert.equal(unplaced.blockIndex, undefined);
    assert.equal(new FormatError('wal', 'bad magic', 0).message, 'wal block 0: bad magic');
  });
});
