// WalSpace: the circular WAL region's bookkeeping. A commit goes right after
// the previous one, or at block 0 when it does not fit before the end (the
// skipped end counts as used until the commits before it are released); live
// commits are never overwritten, so a full WAL places nothing; a durable
// checkpoint releases the commits it covers.
import assert from 'node:assert/strict';

import { WalSpace } from '../../engine/wal_space.js';

describe('new WalSpace()', () => {
  it('starts empty with head and tail at the given block', () => {
    const wal = new WalSpace(10, 3);
    assert.equal(wal.headBlock, 3);
    assert.equal(wal.tailBlock, 3);
    assert.equal(wal.usedBlockCount, 0);
    assert.equal(wal.fill, 0);
  });

  it('throws RangeError for a head outside the region', () => {
    assert.throws(() => new WalSpace(10, 10), RangeError);
    assert.throws(() => new WalSpace(10, -1), RangeError);
  });
});

describe('WalSpace#place() and #append()', () => {
  it('places each commit right after the previous one', () => {
    const wal = new WalSpace(10, 0);
    assert.equal(wal.place(3), 0);
    wal.append(1, 0, 3);
    assert.equal(wal.place(2), 3);
    wal.append(2, 3, 2);
    assert.equal(wal.headBlock, 5);
    assert.equal(wal.tailBlock, 0);
    assert.equal(wal.usedBlockCount, 5);
    assert.equal(wal.fill, 0.5);
  });

  it('wraps the head to block 0 when a commit ends exactly at the end of the region', () => {
    const wal = new WalSpace(10, 6);
    wal.append(1, 6, 4);
    assert.equal(wal.headBlock, 0);
    assert.equal(wal.usedBlockCount, 4);
  });

  it('places a commit that does not fit before the end at block 0 when the WAL is empty', () => {
    const wal = new WalSpace(10, 8);
    assert.equal(wal.place(3), 0);
    assert.equal(wal.place(10), 0, 'a commit as large as the region fits an empty WAL');
    assert.equal(wal.place(11), undefined);
  });

  it('places a commit at block 0 before the tail and counts the skipped end as used', () => {
    const wal = new WalSpace(10, 0);
    wal.append(1, 0, 4);
    wal.append(2, 4, 4);
    wal.releaseThrough(1);
    assert.equal(wal.tailBlock, 4);
    assert.equal(wal.place(3), 0, 'blocks 8..9 are too few; blocks 0..3 are free');
    wal.append(3, 0, 3);
    assert.equal(wal.headBlock, 3);
    assert.equal(wal.usedBlockCount, 9, 'live 4..7, skipped 8..9, live 0..2');
    assert.equal(wal.place(1), 3);
    assert.equal(wal.place(2), undefined, 'block 4 is live');
  });

  it('places nothing while it is full, until a checkpoint releases commits', () => {
    const wal = new WalSpace(8, 0);
    wal.append(1, 0, 4);
    wal.append(2, 4, 4);
    assert.equal(wal.headBlock, 0);
    assert.equal(wal.tailBlock, 0);
    assert.equal(wal.usedBlockCount, 8, 'head === tail with live commits means full');
    assert.equal(wal.fill, 1);
    assert.equal(wal.place(1), undefined);
    wal.releaseThrough(1);
    assert.equal(wal.place(4), 0);
    assert.equal(wal.place(5), undefined);
  });

  it('never places a commit over a live commit that has not wrapped', () => {
    const wal = new WalSpace(10, 2);
    wal.append(1, 2, 7);
    assert.equal(wal.place(1), 9);
    assert.equal(wal.place(2), 0, 'blocks 0..1 are free');
    assert.equal(wal.place(3), undefined, 'block 2 is live');
  });

  it('throws when commits are appended out of sequence', () => {
    const wal = new WalSpace(10, 0);
    wal.append(5, 0, 1);
    assert.throws(() => wal.append(7, 1, 1), /after 5/);
  });
});

describe('WalSpace#releaseThrough()', () => {
  it('frees the blocks of every commit up to the sequence and moves the tail', () => {
    const wal = new WalSpace(16, 0);
    for (let sequence = 1; sequence <= 4; sequence++) wal.append(sequence, (sequence - 1) * 3, 3);
    assert.equal(wal.usedBlockCount, 12);
    wal.releaseThrough(2);
    assert.equal(wal.tailBlock, 6);
    assert.equal(wal.usedBlockCount, 6);
    wal.releaseThrough(4);
    assert.equal(wal.usedBlockCount, 0);
    assert.equal(wal.tailBlock, wal.headBlock);
    wal.releaseThrough(4); // nothing left: harmless
    assert.equal(wal.usedBlockCount, 0);
  });

  it('keeps its bookkeeping right across many wraps of the region', () => {
    const wal = new WalSpace(16, 0);
    let sequence = 0;
    for (let round = 0; round < 3000; round++) {
      const blockCount = 1 + (round % 5);
      let start = wal.place(blockCount);
      if (start === undefined) {
        wal.releaseThrough(sequence - 1); // a checkpoint covering all but the newest commit
        start = wal.place(blockCount);
      }
      assert.notEqual(start, undefined, `round ${round}`);
      assert.ok(start! + blockCount <= 16);
      wal.append(++sequence, start!, blockCount);
      assert.ok(wal.usedBlockCount <= 16);
      assert.ok(wal.fill >= 0 && wal.fill <= 1);
    }
  });
});

describe('WalSpace#replayBlockAfter()', () => {
  it('gives the start of the first live commit after the sequence, or the head', () => {
    const wal = new WalSpace(16, 0);
    wal.append(1, 0, 2);
    wal.append(2, 2, 3);
    wal.append(3, 5, 1);
    assert.equal(wal.replayBlockAfter(0), 0);
    assert.equal(wal.replayBlockAfter(1), 2);
    assert.equal(wal.replayBlockAfter(2), 5);
    assert.equal(wal.replayBlockAfter(3), 6);
  });
});
