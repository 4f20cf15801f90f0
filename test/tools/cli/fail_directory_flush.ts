// Loaded with `node --import` before the CLI (not a test file): fails every
// directory flush (`syncDirectory`) once the file named by
// RINGSTORE_TEST_FAIL_FLUSH_WHEN exists — a flush that fails after a
// publish linked a new store file there.
import { existsSync } from 'node:fs';

import { addon } from '../../../native/addon.js';

const failWhen = process.env.RINGSTORE_TEST_FAIL_FLUSH_WHEN;
const syncDirectory = addon.syncDirectory;
addon.syncDirectory = (path: string): Promise<void> =>
  failWhen !== undefined && existsSync(failWhen)
    ? Promise.reject(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO', errno: -5, syscall: 'fsync' }))
    : syncDirectory.call(addon, path);
