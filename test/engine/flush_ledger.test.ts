// FlushLedger: a flush that succeeds while others are in flight waits for
// them and fails with the first that fails, whichever was issued first (the
// device may see them in another order); a flush issued after it succeeded
// does not hold it back; no flush is issued after a failure.
import assert from 'node:assert/strict';

import { FlushLedger } from '../../engine/flush_ledger.js';

/** A flush whose outcome the test decides. */
class ManualFlush {
  readonly promise: Promise<void>;
  succeed!: () => void;
  fail!: (error: Error) => void;
  calls = 0;

  constructor() {
    this.promise = new Promise<void>((resolve, reject) => {
      this.succeed = resolve;
      this.fail = reject;
    });
  }

  /** The function a ledger's run() calls. */
  readonly issue = (): Promise<void> => {
    this.calls++;
    return this.promise;
  };
}

/** What a promise has come to so far, after the pending reactions ran. */
async function stateOf(promise: Promise<void>): Promise<'pending' | 'resolved' | { rejected: unknown }> {
  let state: 'pending' | 'resolved' | { rejected: unknown } = 'pending';
  promise.then(
    () => (state = 'resolved'),
    (error: unknown) => (state = { rejected: error }),
  );
  for (let i = 0; i < 10; i++) await Promise.resolve();
  return state;
}

function eio(): Error {
  return Object.assign(new Error('EIO: i/o error, fdatasync'), { errno: -5, code: 'EIO', syscall: 'fdatasync' });
}

describe('FlushLedger', () => {
  it('resolves a success with nothing beside it at once', async () => {
    const ledger = new FlushLedger();
    const flush = new ManualFlush();
    const outcome = ledger.run(flush.issue);
    flush.succeed();
    assert.equal(await stateOf(outcome), 'resolved');
    assert.equal(ledger.successesHeld, 0);
  });

  it('holds a success until the flush issued before it settles, then resolves it if that one succeeded', async () => {
    const ledger = new FlushLedger();
    const first = new ManualFlush();
    const second = new ManualFlush();
    const firstOutcome = ledger.run(first.issue);
    const secondOutcome = ledger.run(second.issue);
    second.succeed();
    assert.equal(await stateOf(secondOutcome), 'pending', 'held while the earlier one is in flight');
    first.succeed();
    assert.equal(await stateOf(firstOutcome), 'resolved');
    assert.equal(await stateOf(secondOutcome), 'resolved');
    assert.equal(ledger.successesHeld, 1);
    assert.equal(ledger.failed, false);
  });

  it('fails a success when a flush issued after it, in flight when it succeeded, fails (it may have reached the device first)', async () => {
    const ledger = new FlushLedger();
    const commit = new ManualFlush();
    const checkpoint = new ManualFlush();
    const commitOutcome = ledger.run(commit.issue);
    const checkpointOutcome = ledger.run(checkpoint.issue);
    commit.succeed();
    assert.equal(await stateOf(commitOutcome), 'pending', 'held while the later one is in flight');
    const error = eio();
    checkpoint.fail(error);
    await assert.rejects(checkpointOutcome, (thrown) => thrown === error);
    await assert.rejects(commitOutcome, (thrown) => thrown === error);
    assert.equal(ledger.failed, true);
  });

  it('fails a success when a flush issued before it fails after it succeeded', async () => {
    const ledger = new FlushLedger();
    const checkpoint = new ManualFlush();
    const commit = new ManualFlush();
    const checkpointOutcome = ledger.run(checkpoint.issue);
    const commitOutcome = ledger.run(commit.issue);
    commit.succeed();
    assert.equal(await stateOf(commitOutcome), 'pending');
    const error = eio();
    checkpoint.fail(error);
    await assert.rejects(commitOutcome, (thrown) => thrown === error);
    await assert.rejects(checkpointOutcome, (thrown) => thrown === error);
  });

  it('fails a success when the flush beside it failed first', async () => {
    const ledger = new FlushLedger();
    const failing = new ManualFlush();
    const succeeding = new ManualFlush();
    const failingOutcome = ledger.run(failing.issue);
    const succeedingOutcome = ledger.run(succeeding.issue);
    const error = eio();
    failing.fail(error);
    await assert.rejects(failingOutcome, (thrown) => thrown === error);
    succeeding.succeed();
    await assert.rejects(succeedingOutcome, (thrown) => thrown === error);
  });

  it('issues no flush after one failed, and refuses it with that failure', async () => {
    const ledger = new FlushLedger();
    const failing = new ManualFlush();
    const error = eio();
    const outcome = ledger.run(failing.issue);
    failing.fail(error);
    await assert.rejects(outcome, (thrown) => thrown === error);
    const later = new ManualFlush();
    await assert.rejects(ledger.run(later.issue), (thrown) => thrown === error);
    assert.equal(later.calls, 0, 'never issued');
    assert.equal(ledger.refusedAfterFailure, 1);
  });

  it('does not hold a success for a flush issued after it succeeded', async () => {
    const ledger = new FlushLedger();
    const first = new ManualFlush();
    const outcome = ledger.run(first.issue);
    first.succeed();
    assert.equal(await stateOf(outcome), 'resolved');
    const later = new ManualFlush();
    const laterOutcome = ledger.run(later.issue);
    later.fail(eio());
    await assert.rejects(laterOutcome);
    assert.equal(ledger.successesHeld, 0);
  });

  it('takes a flush function that throws for a failed flush', async () => {
    const ledger = new FlushLedger();
    const beside = new ManualFlush();
    const besideOutcome = ledger.run(beside.issue);
    const error = eio();
    await assert.rejects(
      ledger.run(() => {
        throw error;
      }),
      (thrown) => thrown === error,
    );
    beside.succeed();
    await assert.rejects(besideOutcome, (thrown) => thrown === error);
  });
});
