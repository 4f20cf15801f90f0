// A spec for test_runner.test.ts (not matched by .mocharc.json's spec): its
// test passes, and a rejection no code handles comes after the file's tests
// ended (background work failing late).
describe('runner fixture: a rejection after the file ended', () => {
  it('passes, leaving a timer that rejects later', () => {
    setTimeout(() => void Promise.reject(new Error('fixture: a rejection after the file ended')), 50);
  });
});
