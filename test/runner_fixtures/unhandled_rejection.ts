// A spec for test_runner.test.ts (not matched by .mocharc.json's spec): its
// test passes, and leaves behind a rejection no code ever handles.
import { setTimeout as sleep } from 'node:timers/promises';

describe('runner fixture: a rejection never handled', () => {
  it('passes, leaving a rejected promise no code handles', async () => {
    void Promise.reject(new Error('fixture: a rejection never handled'));
    await sleep(20);
  });
});
