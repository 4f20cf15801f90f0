// SpinPolicy (native/spin_policy.h): the rule behind spinUs and
// completionSpinUs 'auto'. The policy is pure, so it is driven here by a
// model machine that answers each decision with a synthetic observation —
// fast completions and the busy time they took — and the assertions are on
// decisions only, never on clocks.
import assert from 'node:assert/strict';

import { addon } from '../../native/addon.js';
import { throwsWith } from './helpers.js';

type Kind = 'actor' | 'client' | 'lone-reads';

/** Completions per observation: a reap or delivery batch. */
const BATCH_COMPLETIONS = 16;
/** Busy time of one completion when sleeping: a 4 KiB read at QD1, 60 µs. */
const SLEEP_NS_PER_COMPLETION = 60_000;
/** Steps of a run: ~1 M completions, hundreds of epochs and many probes. */
const STEP_COUNT = 60_000;

/**
 * A machine where spinning changes the busy time per completion by
 * `spinSpeedup(step)` (1.3: spinning completes 30 % more per busy second).
 */
function run(kind: Kind, spinSpeedup: (stepIndex: number) => number, stepCount = STEP_COUNT): boolean[] {
  return addon.spinPolicyRun(kind, stepCount, (spinning, stepIndex) => {
    const nsPerCompletion = spinning ? SLEEP_NS_PER_COMPLETION / spinSpeedup(stepIndex) : SLEEP_NS_PER_COMPLETION;
    return [BATCH_COMPLETIONS, Math.round(BATCH_COMPLETIONS * nsPerCompletion)];
  });
}

function spinningShare(decisions: readonly boolean[], from = 0, to = decisions.length): number {
  let spinning = 0;
  for (let i = from; i < to; i++) if (decisions[i]) spinning++;
  return spinning / (to - from);
}

describe('SpinPolicy (spinUs and completionSpinUs \'auto\')', () => {
  // 'lone-reads' routes a handle's lone reads (directReads) with the same
  // schedule: its "spinning" is "through the actor", its other choice the
  // JS thread's own ring, where it starts and where a tie goes.
  for (const kind of ['actor', 'client', 'lone-reads'] as const) {
    describe(`the ${kind} policy`, () => {
      it('sleeps before it has measured anything', () => {
        assert.equal(run(kind, () => 2, 1)[0], false);
      });

      it('spins nearly all the time where spinning completes 30 % more per busy second', () => {
        const decisions = run(kind, () => 1.3);
        assert.ok(spinningShare(decisions, STEP_COUNT / 2) > 0.97, `spinning share ${spinningShare(decisions, STEP_COUNT / 2)}`);
        assert.equal(decisions.at(-1), true);
      });

      it('sleeps nearly all the time where spinning completes 30 % less', () => {
        const decisions = run(kind, () => 0.7);
        assert.ok(spinningShare(decisions, STEP_COUNT / 2) < 0.03, `spinning share ${spinningShare(decisions, STEP_COUNT / 2)}`);
        assert.equal(decisions.at(-1), false);
      });

      it('sleeps when spinning gains less than its margin (a tie costs CPU for nothing)', () => {
        for (const speedup of [1, 1.005]) {
          const decisions = run(kind, () => speedup);
          assert.ok(spinningShare(decisions, STEP_COUNT / 2) < 0.03, `speedup ${speedup}: spinning share ${spinningShare(decisions)}`);
        }
      });

      it('still probes the losing choice now and then (a machine can change)', () => {
        const decisions = run(kind, () => 0.7);
        const secondHalf = spinningShare(decisions, STEP_COUNT / 2);
        assert.ok(secondHalf > 0, 'never probed spinning again');
      });

      it('follows a machine on which spinning stops paying, and one on which it starts to', () => {
        const change = STEP_COUNT / 2;
        const worse = run(kind, (step) => (step < change ? 1.5 : 0.6));
        assert.ok(spinningShare(worse, change / 2, change) > 0.95);
        assert.ok(spinningShare(worse, change + change / 2) < 0.05);
        const better = run(kind, (step) => (step < change ? 0.6 : 1.5));
        assert.ok(spinningShare(better, change / 2, change) < 0.05);
        assert.ok(spinningShare(better, change + change / 2) > 0.95);
      });

      it('counts only busy time: observations without completions never decide', () => {
        // A long idle stretch is reported as nothing: the policy stays where it is.
        const decisions = addon.spinPolicyRun(kind, 1000, () => [0, 0]);
        assert.ok(decisions.every((spinning) => !spinning));
      });
    });
  }

  it('rejects a bad kind, step count or observation with ERR_INVALID_ARG', () => {
    const observe = (): [number, number] => [1, 1];
    throwsWith(() => addon.spinPolicyRun('js' as Kind, 1, observe), RangeError, 'ERR_INVALID_ARG');
    throwsWith(() => addon.spinPolicyRun('actor', -1, observe), RangeError, 'ERR_INVALID_ARG');
    throwsWith(() => addon.spinPolicyRun('actor', 1.5, observe), RangeError, 'ERR_INVALID_ARG');
    throwsWith(() => addon.spinPolicyRun('actor', 1, () => [-1, 5]), RangeError, 'ERR_INVALID_ARG');
    throwsWith(() => addon.spinPolicyRun('actor', 1, () => [1, 0.5]), RangeError, 'ERR_INVALID_ARG');
    throwsWith(() => addon.spinPolicyRun('actor', 1, () => [1] as unknown as [number, number]), RangeError, 'ERR_INVALID_ARG');
  });
});
