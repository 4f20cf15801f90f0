// A spec for test_runner.test.ts (not matched by .mocharc.json's spec): a
// rejection Node reports as unhandled, then handled by the test itself —
// which is no error.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

describe('runner fixture: a rejection handled late', () => {
  it('awaits a rejected promise after a pause', async () => {
    const rejected = Promise.reject(new Error('fixture: handled late'));
    await sleep(20);
    await assert.rejects(rejected, /handled late/);
  });
});
