// WriteClock's watch of puts (level/write_clock.ts): what a clear() of
// RingLevel reads to know whether a key was put since it began, and so
// whether it may take a new snapshot (ring_level.ts).
import assert from 'node:assert/strict';

import { WriteClock } from '../../level/write_clock.js';

/** A write the test settles by hand. */
function pendingWrite(): { written: Promise<void>; resolve: () => void; reject: () => void } {
  let resolve!: () => void;
  let reject!: () => void;
  const written = new Promise<void>((res, rej) => {
    resolve = res;
    reject = () => rej(new Error('refused'));
  });
  return { written, resolve, reject };
}

describe('WriteClock.watchPuts', () => {
  it('counts the puts made after it began, in flight or applied, and takes back those refused (a put refused for room kept a full store\'s clear() on its first snapshot: found by a review)', async () => {
    const clock = new WriteClock(() => undefined);
    const before = pendingWrite();
    const trackedBefore = clock.track(before.written, true).catch(() => undefined);
    const watch = clock.watchPuts();
    const applied = pendingWrite();
    const refused = pendingWrite();
    const deletion = pendingWrite();
    const trackedApplied = clock.track(applied.written, true);
    const trackedRefused = clock.track(refused.written, true).catch(() => undefined);
    const trackedDeletion = clock.track(deletion.written, false);
    assert.equal(watch.putsMade, 2, 'two puts in flight; a delete is no put');
    refused.reject();
    await trackedRefused;
    assert.equal(watch.putsMade, 1, 'the refused put is taken back');
    // A put made before the watch began is not counted, refused or not.
    before.reject();
    await trackedBefore;
    assert.equal(watch.putsMade, 1);
    applied.resolve();
    deletion.resolve();
    await Promise.all([trackedApplied, trackedDeletion]);
    assert.equal(watch.putsMade, 1, 'an applied put stays counted');
    clock.unwatchPuts(watch);
    await clock.track(Promise.resolve(), true);
    assert.equal(watch.putsMade, 1, 'not counted once unwatched');
  });
});
