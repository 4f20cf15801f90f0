// `npm test`'s wrapper (run_mocha.ts, with late_errors.ts in each test
// process) fails a run for a rejection no code ever handles, which mocha
// itself drops in serial mode as in parallel, and passes a rejection a test
// handles late. Each case runs mocha on a fixture spec in a child process.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const testDirectory = dirname(fileURLToPath(import.meta.url));
const runMocha = join(testDirectory, 'run_mocha.js');
const lateErrors = join(testDirectory, 'late_errors.js');
const fixture = (name: string): string => join(testDirectory, 'runner_fixtures', `${name}.js`);

interface RunResult {
  status: number | null;
  output: string;
}

/** npm test's wrapper over one fixture spec, without the repository's config (its spec would run the whole suite). */
function runWrapper(spec: string | string[], parallel: boolean): Promise<RunResult> {
  const mochaArguments = ['--no-config', '--require', lateErrors, ...(parallel ? ['--parallel', '--jobs', '2'] : []), ...(typeof spec === 'string' ? [spec] : spec)];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [runMocha, ...mochaArguments], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, output }));
  });
}

describe("npm test's wrapper and rejections", function () {
  this.timeout(60_000);

  for (const parallel of [false, true]) {
    const mode = parallel ? 'parallel' : 'serial';

    it(`fails a run whose test left a rejection no code handled (${mode} mode)`, async () => {
      const run = await runWrapper(fixture('unhandled_rejection'), parallel);
      assert.match(run.output, /1 passing/, run.output);
      assert.equal(run.status, 1, run.output);
      assert.match(run.output, /npm test: FAILED: 1 error\(s\)/, run.output);
      assert.match(run.output, /unhandled rejection: Error: fixture: a rejection never handled/, run.output);
    });

    // Not in parallel mode: there the one file's worker is stopped as soon
    // as its tests end, before its timer fires (an error after the worker
    // pool's teardown is never raised at all; run_mocha.ts cannot see it).
    if (!parallel) {
      it(`fails a run whose rejection no code handled came after the file's tests ended (${mode} mode)`, async () => {
        const run = await runWrapper(fixture('rejection_after_file'), parallel);
        assert.equal(run.status, 1, run.output);
        assert.match(run.output, /unhandled rejection: Error: fixture: a rejection after the file ended/, run.output);
      });
    }

    it(`fails a run whose rejections no code handled have reasons hard to show: each recorded, none confusing mocha (${mode} mode)`, async () => {
      const run = await runWrapper(fixture('odd_rejection_reasons'), parallel);
      assert.equal(run.status, 1, run.output);
      assert.match(run.output, /3 passing/, run.output);
      assert.match(run.output, /npm test: FAILED: 3 error\(s\)/, run.output);
      assert.doesNotMatch(run.output, /could not record|done\(\) called multiple times/, run.output);
    });

    it(`passes a run whose test handled a rejection late (${mode} mode)`, async () => {
      const run = await runWrapper(fixture('late_handled_rejection'), parallel);
      assert.equal(run.status, 0, run.output);
      assert.match(run.output, /1 passing/, run.output);
      assert.doesNotMatch(run.output, /npm test: FAILED/, run.output);
    });
  }

  it("fails a run whose rejection no code handled comes in a parallel worker's second file (mocha's worker removes every listener after a file: a listener would miss it)", async () => {
    const run = await runWrapper([...['passing_1', 'passing_2', 'passing_3'].map(fixture), fixture('unhandled_rejection')], true);
    assert.match(run.output, /4 passing/, run.output);
    assert.equal(run.status, 1, run.output);
    assert.match(run.output, /unhandled rejection: Error: fixture: a rejection never handled/, run.output);
  });
});
