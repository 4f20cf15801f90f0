// abstract-level's own suite against RingLevel, from mocha: the suite is
// tape-based, so it runs in a child process (abstract_suite.js) and this
// test reads its TAP summary. A child also keeps the suite's hundreds of
// stores and their listeners out of the mocha process.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The suite takes ~40 s on a shared 2-core machine; this leaves room for a slower one. */
const SUITE_TIMEOUT_MS = 300_000;

/** The empty-key tests abstract_suite.ts skips on the root database (see docs/level.md). */
const SKIPPED_TESTS_MAX = 5;

interface TapSummary {
  assertions: number;
  passed: number;
  failed: number;
  /** The runner's own closing line: tests, skipped, stores, seconds. */
  runnerLine: string | undefined;
  failures: string[];
}

function parseTap(output: string): TapSummary {
  const number = (pattern: RegExp): number | undefined => {
    const match = pattern.exec(output);
    return match === null ? undefined : Number(match[1]);
  };
  const assertions = number(/^# tests +(\d+)$/m);
  const passed = number(/^# pass +(\d+)$/m);
  assert.ok(assertions !== undefined && passed !== undefined, `no TAP summary in the suite's output:\n${output.slice(-2000)}`);
  return {
    assertions,
    passed,
    // tape prints "# fail N" only when N > 0.
    failed: number(/^# fail +(\d+)$/m) ?? 0,
    runnerLine: /^# ringstore-level-suite: (.*)$/m.exec(output)?.[1],
    failures: output.split('\n').filter((line) => line.startsWith('not ok')),
  };
}

describe('ringstore/level: abstract-level test suite', function () {
  this.timeout(SUITE_TIMEOUT_MS);

  it('passes every test of abstract-level/test, skipping only the empty-key tests on the root database', async function () {
    const script = join(dirname(fileURLToPath(import.meta.url)), 'abstract_suite.js');
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const exitCode = await new Promise<number | null>((resolve) => child.on('close', resolve));
    const summary = parseTap(output);
    console.log(`      abstract-level suite: ${summary.assertions} assertions, ${summary.passed} passed, ${summary.failed} failed; ${summary.runnerLine ?? '(no runner line)'}`);
    assert.equal(summary.failed, 0, `failures:\n${summary.failures.slice(0, 20).join('\n')}`);
    assert.equal(summary.passed, summary.assertions);
    assert.ok(summary.runnerLine !== undefined, 'the runner did not finish its clean-up');
    assert.match(summary.runnerLine, / (\d+) skipped/);
    assert.ok(Number(/ (\d+) skipped/.exec(summary.runnerLine)![1]) <= SKIPPED_TESTS_MAX, 'more tests skipped than the empty-key tests');
    assert.equal(exitCode, 0, `the suite exited with ${exitCode}`);
  });
});
