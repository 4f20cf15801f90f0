// A spec for test_runner.test.ts (not matched by .mocharc.json's spec): one
// test that passes, so that in parallel mode the files after it are a
// worker's second (mocha's worker removes every listener after a file).
describe('runner fixture: passing file 3', () => {
  it('passes', () => undefined);
});
