// The `code` of the IO layer's kernel errors (RingSystemError): the errno's
// name, also for errnos libuv has no name for, since the store decides by
// code (EDQUOT is no room, ESTALE or EUCLEAN a failing file system).
import assert from 'node:assert/strict';
import { constants as osConstants } from 'node:os';

import { errnoName, RingSystemError, systemErrorCode } from '../../native/errors.js';

describe('RingSystemError codes', () => {
  it('names errnos libuv does not (it said "Unknown system error -116" for ESTALE; found by a review)', () => {
    for (const [errno, name] of [
      [5, 'EIO'],
      [28, 'ENOSPC'],
      [74, 'EBADMSG'],
      [107, 'ENOTCONN'],
      [116, 'ESTALE'],
      [117, 'EUCLEAN'],
      [121, 'EREMOTEIO'],
      [122, 'EDQUOT'],
      [123, 'ENOMEDIUM'],
    ] as const) {
      assert.equal(errnoName(errno), name, `errno ${errno}`);
      const error = new RingSystemError(errno, 'pwrite', '/x');
      assert.equal(error.code, name);
      assert.equal(error.errno, -errno);
      assert.match(error.message, new RegExp(`^${name}: pwrite failed on '/x' \\(errno ${errno}\\)$`));
    }
  });

  it('gives every errno os.constants knows a name of the E… form, and one it does not know E<n>', () => {
    for (const errno of Object.values(osConstants.errno)) assert.match(errnoName(errno), /^E[A-Z0-9]+$/, `errno ${errno}`);
    assert.equal(errnoName(9999), 'E9999');
    // Either sign: RingSystemError takes the kernel's negative result too.
    assert.equal(new RingSystemError(-116, 'open').code, 'ESTALE');
  });

  it("reads the errno of an error Node's fs could not name ('UNKNOWN', 'Unknown system error -122'), and leaves other codes as they are", () => {
    assert.equal(systemErrorCode(Object.assign(new Error('x'), { code: 'Unknown system error -122', errno: -122 })), 'EDQUOT');
    assert.equal(systemErrorCode(Object.assign(new Error('x'), { code: 'UNKNOWN', errno: -116 })), 'ESTALE');
    assert.equal(systemErrorCode(Object.assign(new Error('x'), { code: 'ENOSPC', errno: -28 })), 'ENOSPC');
    assert.equal(systemErrorCode(Object.assign(new Error('x'), { code: 'ERR_STORE_PATH' })), 'ERR_STORE_PATH');
    assert.equal(systemErrorCode(new Error('no code')), undefined);
    assert.equal(systemErrorCode('not an error'), undefined);
  });
});
