// WAL scan: regions are built the way the writer builds them — consecutive
// sequences, each commit right after the previous one or at block 0 when it
// does not fit, older laps left behind — and then damaged the way crashes
// and media damage it. The scan must return exactly the intact chain, stop
// at a torn tail, and refuse damage that a later commit proves was durable,
// naming the damaged block.
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { ByteWriter } from '../../format/byte_writer.js';
import { beginCommitPayload, finishCommitPayload } from '../../format/commit.js';
import { FormatError } from '../../format/format_error.js';
import { encodeFrame, frameBlockCount } from '../../format/frame.js';
import { writePut } from '../../format/records.js';
import { scanWal, scanWalBlocks, WalSummary, type ScannedCommit, type WalScan } from '../../format/wal_scan.js';
import { patternBytes, PROPERTY_SEED, throwsFormatError, utf8, withBitFlipped } from './helpers.js';

const BLOCK_SIZE = 512;
const PER_BLOCK = BLOCK_SIZE - 32;
/** Absolute block of the region's first block: the WAL starts after the two superblocks. */
const WAL_START = 2;
const TAG = 0x7a6b5c4d;
const OTHER_TAG = 0x7a6b5c4e;

/** A commit as the test wrote it: where, how long, and its payload. */
type Placed = ScannedCommit;

/**
 * The payload of commit `sequence` spanning exactly `blockCount` blocks: one
 * inline put whose value fills it to an odd length.
 */
function commitPayload(sequence: number, blockCount: number, durableSequence: number): Uint8Array {
  const key = utf8(`k${sequence}`);
  const length = (blockCount - 1) * PER_BLOCK + 40 + ((sequence * 37) % 400);
  const writer = new ByteWriter();
  beginCommitPayload(writer, durableSequence);
  writePut(writer, key, true, { kind: 'inline', bytes: patternBytes(length - 16 - 8 - key.length, sequence) });
  const payload = finishCommitPayload(writer, 1).slice();
  assert.equal(frameBlockCount(payload.length, BLOCK_SIZE), blockCount);
  return payload;
}

/** A WAL region and a writer that follows the WAL writer's placement rules. */
class WalImage {
  readonly bytes: Uint8Array;
  head = 0;
  nextSequence: number;

  constructor(
    readonly walBlockCount: number,
    firstSequence = 1,
  ) {
    this.bytes = new Uint8Array(walBlockCount * BLOCK_SIZE);
    this.nextSequence = firstSequence;
  }

  /** Writes the next commit at the head, or at block 0 if it does not fit before the end. */
  append(blockCount: number, options: { durableSequence?: number; storeTag?: number } = {}): Placed {
    if (this.head + blockCount > this.walBlockCount) this.head = 0;
    const sequence = this.nextSequence++;
    const placed = this.writeAt(this.head, sequence, blockCount, options);
    this.head += blockCount;
    if (this.head === this.walBlockCount) this.head = 0;
    return placed;
  }

  /** Writes commit `sequence` at `startBlock` without moving the head. */
  writeAt(startBlock: number, sequence: number, blockCount: number, options: { durableSequence?: number; storeTag?: number } = {}): Placed {
    const payload = commitPayload(sequence, blockCount, options.durableSequence ?? sequence - 1);
    const frame = new Uint8Array(blockCount * BLOCK_SIZE);
    encodeFrame('wal', sequence, options.storeTag ?? TAG, payload, frame, BLOCK_SIZE);
    this.bytes.set(frame, startBlock * BLOCK_SIZE);
    return { sequence, startBlock, blockCount, payload };
  }

  /** Appends commits of 1..3 blocks until the head is back at block 0: one whole lap. */
  fillLap(): Placed[] {
    const placed: Placed[] = [];
    const sizes = [1, 2, 3, 2];
    do {
      const size = Math.min(sizes[placed.length % sizes.length], this.walBlockCount - this.head);
      placed.push(this.append(size));
    } while (this.head !== 0);
    return placed;
  }

  /** Moves the writer, as a superblock's replay position would. */
  jumpTo(head: number, sequence: number): void {
    this.head = head;
    this.nextSequence = sequence;
  }

  block(index: number): Uint8Array {
    return this.bytes.subarray(index * BLOCK_SIZE, (index + 1) * BLOCK_SIZE);
  }

  setBlock(index: number, content: Uint8Array): void {
    this.bytes.set(content, index * BLOCK_SIZE);
  }

  /**
   * scanWal of the region, checked against scanWalBlocks of a WalSummary
   * of it (as recovery reads it: in chunks, here of 5 blocks, the last
   * chunk first): every test of the scan tests both.
   */
  scan(replayBlock: number, firstSequence: number): WalScan {
    const summary = new WalSummary(this.walBlockCount, BLOCK_SIZE, WAL_START, TAG, firstSequence);
    const chunkBlocks = 5;
    for (let first = Math.floor((this.walBlockCount - 1) / chunkBlocks) * chunkBlocks; first >= 0; first -= chunkBlocks) {
      summary.add(first, this.bytes.slice(first * BLOCK_SIZE, Math.min(this.walBlockCount, first + chunkBlocks) * BLOCK_SIZE));
    }
    const outcome = (run: () => WalScan): WalScan | FormatError => {
      try {
        return run();
      } catch (error) {
        if (error instanceof FormatError) return error;
        throw error;
      }
    };
    const whole = outcome(() => scanWal({ bytes: this.bytes, blockSize: BLOCK_SIZE, startBlock: WAL_START, storeTag: TAG }, replayBlock, firstSequence));
    const summarized = outcome(() => scanWalBlocks(summary, replayBlock, firstSequence));
    if (whole instanceof FormatError) {
      assert.ok(summarized instanceof FormatError, 'the summary refuses what the region refuses');
      assert.deepEqual([summarized.blockIndex, summarized.reason], [whole.blockIndex, whole.reason], 'the same refusal');
      throw whole;
    }
    assert.deepEqual(summarized, whole, 'the summary scans as the region does');
    return whole;
  }
}

/**
 * A region whose blocks all hold an older lap (sequences 1..), so every
 * block a test does not write is a stale, intact block of this store.
 */
function lappedImage(walBlockCount: number, firstSequence: number): WalImage {
  const image = new WalImage(walBlockCount, 1);
  image.fillLap();
  assert.ok(image.nextSequence < firstSequence, 'the older lap has lower sequences');
  image.jumpTo(0, firstSequence);
  return image;
}

function assertScan(scan: WalScan, expected: { commits: readonly Placed[]; nextBlock: number; nextSequence: number }, what = 'scan'): void {
  assert.deepEqual(
    scan.commits.map(({ sequence, startBlock, blockCount }) => ({ sequence, startBlock, blockCount })),
    expected.commits.map(({ sequence, startBlock, blockCount }) => ({ sequence, startBlock, blockCount })),
    `${what}: commits`,
  );
  scan.commits.forEach((commit, i) => assert.deepEqual(commit.payload, expected.commits[i].payload, `${what}: payload of commit ${commit.sequence}`));
  assert.equal(scan.nextBlock, expected.nextBlock, `${what}: nextBlock`);
  assert.equal(scan.nextSequence, expected.nextSequence, `${what}: nextSequence`);
}

function refusedAsDamage(run: () => unknown, absoluteBlock: number, what: string): FormatError {
  return throwsFormatError(run, { structure: 'wal', blockIndex: absoluteBlock, reason: /damage in the middle of the log/ }, what);
}

/** What a block of an interrupted commit can hold after a crash. */
type BlockState = 'intact' | 'zeros' | 'stale' | 'garbage' | 'half';
const BLOCK_STATES: readonly BlockState[] = ['intact', 'zeros', 'stale', 'garbage', 'half'];

/** All assignments of a state to each of `blockCount` blocks, except all intact. */
function damageCombinations(blockCount: number): BlockState[][] {
  let combos: BlockState[][] = [[]];
  for (let i = 0; i < blockCount; i++) combos = combos.flatMap((combo) => BLOCK_STATES.map((state) => [...combo, state]));
  return combos.filter((combo) => combo.some((state) => state !== 'intact'));
}

/**
 * Puts `state` into block `index` of `image`, where `before` is what the
 * block held before the commit was written. Returns whether the block now
 * differs from what the commit wrote (a torn half can happen to match).
 */
function applyState(image: WalImage, index: number, state: BlockState, before: Uint8Array, seed: number): boolean {
  const written = image.block(index).slice();
  if (state === 'intact') return false;
  if (state === 'zeros') image.setBlock(index, new Uint8Array(BLOCK_SIZE));
  if (state === 'stale') image.setBlock(index, before);
  if (state === 'garbage') image.setBlock(index, patternBytes(BLOCK_SIZE, seed));
  if (state === 'half') {
    // A torn sector write: the new first half over the old second half.
    const half = before.slice();
    half.set(written.subarray(0, BLOCK_SIZE / 2));
    image.setBlock(index, half);
  }
  return !sameBytes(image.block(index), written);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** True while every block of `commit` still holds what the writer wrote. */
function isIntact(image: WalImage, commit: Placed): boolean {
  const frame = new Uint8Array(commit.blockCount * BLOCK_SIZE);
  encodeFrame('wal', commit.sequence, TAG, commit.payload, frame, BLOCK_SIZE);
  return sameBytes(image.bytes.subarray(commit.startBlock * BLOCK_SIZE, (commit.startBlock + commit.blockCount) * BLOCK_SIZE), frame);
}

describe('scanWal()', () => {
  describe('a clean log', () => {
    it('finds every commit of a chain and says where the next commit goes', () => {
      const image = new WalImage(32, 1);
      const commits = [1, 2, 3, 1, 2].map((size) => image.append(size));
      assertScan(image.scan(0, 1), { commits, nextBlock: 9, nextSequence: 6 });
    });

    it('finds a chain over an older lap and stops at the older lap with stop "end"', () => {
      const image = lappedImage(32, 101);
      const commits = [3, 1, 2, 2].map((size) => image.append(size));
      const scan = image.scan(0, 101);
      assertScan(scan, { commits, nextBlock: 8, nextSequence: 105 });
      assert.equal(scan.stop, 'end');
      assert.equal(scan.tornReason, undefined);
    });

    it('reports the end at never-written (zero) blocks as stop "end", not a torn tail', () => {
      // A new store's WAL is zeros past its last commit: no commit there.
      const empty = new WalImage(16, 1).scan(0, 1);
      assertScan(empty, { commits: [], nextBlock: 0, nextSequence: 1 }, 'empty WAL');
      assert.equal(empty.stop, 'end');
      assert.equal(empty.tornReason, undefined);
      const image = new WalImage(16, 1);
      const commits = [1, 2].map((size) => image.append(size));
      const chain = image.scan(0, 1);
      assertScan(chain, { commits, nextBlock: 3, nextSequence: 3 }, '2 commits then zeros');
      assert.equal(chain.stop, 'end');
      assert.equal(chain.tornReason, undefined);
    });

    it('finds a chain that fills the region exactly, ending where the next lap starts', () => {
      const image = new WalImage(12, 1);
      const commits = [3, 3, 2, 4].map((size) => image.append(size));
      const scan = image.scan(0, 1);
      assertScan(scan, { commits, nextBlock: 0, nextSequence: 5 });
      assert.equal(scan.stop, 'end', 'block 0 holds commit 1, an older sequence');
    });

    it('starts from a replay position in the middle of the region, ignoring the commits before it', () => {
      const image = lappedImage(32, 101);
      const commits = [1, 2, 3, 1, 2, 3, 1, 2].map((size) => image.append(size));
      for (const from of [1, 3, 5, 7]) {
        assertScan(image.scan(commits[from].startBlock, commits[from].sequence), { commits: commits.slice(from), nextBlock: 15, nextSequence: 109 }, `from commit ${from}`);
      }
      // Damage before the replay position is not the scan's business: those commits are in the checkpoint.
      image.setBlock(commits[1].startBlock, withBitFlipped(image.block(commits[1].startBlock), 1000));
      assertScan(image.scan(commits[3].startBlock, commits[3].sequence), { commits: commits.slice(3), nextBlock: 15, nextSequence: 109 }, 'after damage before the replay position');
    });

    it('names blocks in tornReason by their absolute index', () => {
      const image = new WalImage(16, 1);
      image.append(2);
      const torn = image.append(2);
      image.setBlock(torn.startBlock + 1, patternBytes(BLOCK_SIZE, 3));
      const scan = image.scan(0, 1);
      assert.equal(scan.stop, 'torn');
      assert.match(scan.tornReason ?? '', new RegExp(`^block ${WAL_START + torn.startBlock + 1}: `));
    });
  });

  describe('wrap-around', () => {
    /** Region of 16 blocks over an older lap; commits from block 10, the third one wrapping to block 0. */
    function wrappedImage(): { image: WalImage; commits: Placed[] } {
      const image = lappedImage(16, 101);
      image.jumpTo(10, 50);
      const commits = [3, 2, 3, 1, 2].map((size) => image.append(size));
      assert.deepEqual(commits.map((c) => c.startBlock), [10, 13, 0, 3, 4], 'a 3-block commit does not fit in block 15 and goes to 0');
      return { image, commits };
    }

    it('follows a commit that did not fit at the end to block 0', () => {
      const { image, commits } = wrappedImage();
      const scan = image.scan(10, 50);
      assertScan(scan, { commits, nextBlock: 6, nextSequence: 55 });
      assert.equal(scan.stop, 'end');
    });

    it('follows the wrap whatever the unused last block holds: zeros, garbage, a stale block', () => {
      for (const [what, content] of [
        ['zeros', new Uint8Array(BLOCK_SIZE)],
        ['garbage', patternBytes(BLOCK_SIZE, 77)],
      ] as const) {
        const { image, commits } = wrappedImage();
        image.setBlock(15, content);
        assertScan(image.scan(10, 50), { commits, nextBlock: 6, nextSequence: 55 }, what);
      }
    });

    it('continues at block 0 after a commit that ends exactly at the region end', () => {
      const image = lappedImage(16, 101);
      image.jumpTo(10, 50);
      const commits = [3, 3, 2].map((size) => image.append(size));
      assert.deepEqual(commits.map((c) => c.startBlock), [10, 13, 0]);
      assertScan(image.scan(10, 50), { commits, nextBlock: 2, nextSequence: 53 });
    });

    it('starts at block 0 when the replay position is where a wrapped commit did not fit', () => {
      const { image, commits } = wrappedImage();
      assertScan(image.scan(15, 52), { commits: commits.slice(2), nextBlock: 6, nextSequence: 55 });
    });

    it('does not take a commit at block 0 that would have fitted where it was expected', () => {
      // The writer goes to block 0 only when a commit does not fit before the
      // end; a copy of the next sequence at 0 that would have fitted is stale
      // or misdirected, not the next commit.
      const image = lappedImage(16, 101);
      image.jumpTo(10, 50);
      const commits = [image.append(3)];
      image.writeAt(0, 51, 2);
      const scan = image.scan(10, 50);
      assertScan(scan, { commits, nextBlock: 13, nextSequence: 51 });
      assert.equal(scan.stop, 'end');
      // The same commit that does not fit (4 blocks, 3 left) is followed.
      const wrapped = image.writeAt(0, 51, 4);
      assertScan(image.scan(10, 50), { commits: [...commits, wrapped], nextBlock: 4, nextSequence: 52 });
    });

    it('runs several laps of a small region', () => {
      const image = new WalImage(7, 1);
      const all = Array.from({ length: 40 }, (_, i) => image.append(1 + (i % 3)));
      // What the region still holds: the commits after the last overwritten one.
      let first = all.length;
      while (first > 0 && isIntact(image, all[first - 1])) first--;
      assert.ok(first > 0 && all.length - first >= 3, 'the region holds part of the log');
      assertScan(image.scan(all[first].startBlock, all[first].sequence), { commits: all.slice(first), nextBlock: image.head, nextSequence: 41 });
    });
  });

  describe('a torn last commit', () => {
    it('keeps the earlier commits and stops before it, whatever subset of its blocks was lost', () => {
      for (const combo of damageCombinations(3)) {
        const image = lappedImage(32, 101);
        const commits = [2, 1, 3].map((size) => image.append(size));
        const before = [6, 7, 8].map((block) => image.block(block).slice());
        const torn = image.append(3);
        assert.equal(torn.startBlock, 6);
        const changed = combo.map((state, i) => applyState(image, 6 + i, state, before[i], i + 1));
        assert.ok(changed.some(Boolean), `blocks ${combo.join('/')} left the commit intact`);
        let scan: WalScan;
        try {
          scan = image.scan(0, 101);
        } catch (error) {
          assert.fail(`blocks ${combo.join('/')}: threw ${String(error)}`);
        }
        assertScan(scan, { commits, nextBlock: 6, nextSequence: 104 }, `blocks ${combo.join('/')}`);
      }
    });

    it('reports stop "torn" naming the first bad block when its first block carries the WAL magic, else "end"', () => {
      // format/wal_scan.ts: a block without the WAL magic (never written,
      // zeroed, trimmed) or an intact block of something else (an older lap)
      // holds no commit, and the log ends there ('end'). A first block with
      // the magic that fails to decode, or an intact first block followed by
      // a bad one, is an interrupted write of this commit ('torn'). With
      // sector-atomic writes a crash leaves each block old or new, so a lost
      // first block reads as the older lap's and the tail as a clean end;
      // recovery treats both stops the same.
      const mislabelled: string[] = [];
      for (const combo of damageCombinations(3)) {
        const image = lappedImage(32, 101);
        [2, 1, 3].forEach((size) => image.append(size));
        const before = [6, 7, 8].map((block) => image.block(block).slice());
        image.append(3);
        const changed = combo.map((state, i) => applyState(image, 6 + i, state, before[i], i + 1));
        const scan = image.scan(0, 101);
        const expected =
          combo[0] === 'intact' || combo[0] === 'half' ? `torn: block ${WAL_START + 6 + changed.indexOf(true)}` : 'end';
        const observed = scan.stop === 'torn' ? `torn: ${(scan.tornReason ?? '').split(':')[0]}` : `${scan.stop}${scan.tornReason === undefined ? '' : ' with a reason'}`;
        if (observed !== expected) mislabelled.push(`${combo.join('/')}: expected ${expected}, got ${observed}`);
      }
      assert.deepEqual(mislabelled, []);
    });

    it('keeps the earlier commits when a torn commit wrapped to block 0', () => {
      for (const combo of damageCombinations(3)) {
        const image = lappedImage(16, 101);
        image.jumpTo(10, 50);
        const commits = [3, 2].map((size) => image.append(size));
        const before = [0, 1, 2].map((block) => image.block(block).slice());
        const torn = image.append(3);
        assert.equal(torn.startBlock, 0);
        combo.forEach((state, i) => applyState(image, i, state, before[i], i + 9));
        assertScan(image.scan(10, 50), { commits, nextBlock: 15, nextSequence: 52 }, `blocks ${combo.join('/')}`);
      }
    });

    it('treats a first block that claims more blocks than the region has left as torn', () => {
      const image = new WalImage(16, 1);
      const commits = [3, 3, 3, 3, 3].map((size) => image.append(size));
      // Block 15: the first block of a 3-block commit 6, as if misplaced.
      const frame = new Uint8Array(3 * BLOCK_SIZE);
      encodeFrame('wal', 6, TAG, commitPayload(6, 3, 5), frame, BLOCK_SIZE);
      image.setBlock(15, frame.subarray(0, BLOCK_SIZE));
      const scan = image.scan(0, 1);
      assertScan(scan, { commits, nextBlock: 15, nextSequence: 6 });
      assert.equal(scan.stop, 'torn');
      assert.match(scan.tornReason ?? '', /runs past the WAL end/);
    });

    it('is a torn tail, not damage, when later commits were written before it was durable (deferred flush)', () => {
      const image = lappedImage(32, 101);
      const commits = [1, 2].map((size) => image.append(size));
      const torn = image.append(2, { durableSequence: 102 });
      // Written before 103 was known durable: they do not prove 103 was.
      image.append(1, { durableSequence: 102 });
      image.append(2, { durableSequence: 102 });
      image.setBlock(torn.startBlock + 1, withBitFlipped(image.block(torn.startBlock + 1), 4000));
      const scan = image.scan(0, 101);
      assertScan(scan, { commits, nextBlock: torn.startBlock, nextSequence: 103 });
      assert.equal(scan.stop, 'torn');
    });
  });

  describe('damage in the middle of the log', () => {
    /** Commits 101..106 from block 0 over an older lap, each flushed before the next. */
    function chain(): { image: WalImage; commits: Placed[] } {
      const image = lappedImage(32, 101);
      const commits = [1, 3, 2, 1, 2, 1].map((size) => image.append(size));
      return { image, commits };
    }

    it('refuses every single-bit flip in a middle commit, naming the damaged block', () => {
      const { image, commits } = chain();
      const damaged = commits[1]; // 3 blocks: first, middle, last (partly filled)
      for (let index = 0; index < damaged.blockCount; index++) {
        const block = damaged.startBlock + index;
        const clean = image.block(block).slice();
        for (let bit = 0; bit < BLOCK_SIZE * 8; bit++) {
          image.setBlock(block, withBitFlipped(clean, bit));
          refusedAsDamage(() => image.scan(0, 101), WAL_START + block, `block ${index} of commit ${damaged.sequence}, bit ${bit}`);
        }
        image.setBlock(block, clean);
      }
      assertScan(image.scan(0, 101), { commits, nextBlock: 10, nextSequence: 107 }, 'after undoing the damage');
    });

    it('refuses a middle commit block that was zeroed, garbled or replaced by a stale or foreign block', () => {
      const { image, commits } = chain();
      const damaged = commits[2];
      const foreign = new WalImage(32, damaged.sequence);
      foreign.jumpTo(damaged.startBlock, damaged.sequence);
      foreign.append(damaged.blockCount, { storeTag: OTHER_TAG });
      const olderLap = lappedImage(32, 101);
      const replacements: [string, (block: number) => Uint8Array][] = [
        ['zeros', () => new Uint8Array(BLOCK_SIZE)],
        ['garbage', (block) => patternBytes(BLOCK_SIZE, block)],
        ['a stale block of the older lap', (block) => olderLap.block(block).slice()],
        ['the same commit of another store', (block) => foreign.block(block).slice()],
      ];
      for (const [what, content] of replacements) {
        for (let index = 0; index < damaged.blockCount; index++) {
          const block = damaged.startBlock + index;
          const clean = image.block(block).slice();
          image.setBlock(block, content(block));
          refusedAsDamage(() => image.scan(0, 101), WAL_START + block, `block ${index} of commit ${damaged.sequence}: ${what}`);
          image.setBlock(block, clean);
        }
      }
    });

    it('refuses damage to the first commit of the scan and to the last but one', () => {
      for (const victim of [0, 4]) {
        const { image, commits } = chain();
        const block = commits[victim].startBlock;
        image.setBlock(block, withBitFlipped(image.block(block), 2000));
        refusedAsDamage(() => image.scan(0, 101), WAL_START + block, `commit ${commits[victim].sequence}`);
      }
    });

    it('refuses damage to a middle commit that wrapped to block 0, naming the damaged block', () => {
      // Commit 52 did not fit in block 15 and went to block 0. When one of its
      // blocks is damaged, the error must point at that block and say what is
      // wrong with it, not at block 15 (an intact stale block) as "no commit".
      const image = lappedImage(16, 101);
      image.jumpTo(10, 50);
      const commits = [3, 2, 3, 1, 2].map((size) => image.append(size));
      const wrapped = commits[2];
      assert.equal(wrapped.startBlock, 0);
      const misnamed: string[] = [];
      for (let index = 0; index < wrapped.blockCount; index++) {
        const block = wrapped.startBlock + index;
        const clean = image.block(block).slice();
        const wrong = new Map<string, number[]>(); // message -> bits
        for (let bit = 0; bit < BLOCK_SIZE * 8; bit++) {
          image.setBlock(block, withBitFlipped(clean, bit));
          const error = throwsFormatError(() => image.scan(10, 50), { structure: 'wal', reason: /damage in the middle of the log/ }, `block ${index}, bit ${bit}`);
          if (error.blockIndex !== WAL_START + block) wrong.set(error.message, [...(wrong.get(error.message) ?? []), bit]);
        }
        image.setBlock(block, clean);
        for (const [message, bits] of wrong) {
          misnamed.push(`${bits.length} bit flips (bits ${bits[0]}..${bits[bits.length - 1]}) in WAL block ${block} (absolute ${WAL_START + block}) reported as '${message}'`);
        }
      }
      assert.deepEqual(misnamed, [], `damage to the wrapped commit ${wrapped.sequence} is misreported:\n  ${misnamed.join('\n  ')}`);
    });

    it('says in the message which later commit proves the damaged one was durable', () => {
      const { image, commits } = chain();
      image.setBlock(commits[2].startBlock, new Uint8Array(BLOCK_SIZE));
      const error = refusedAsDamage(() => image.scan(0, 101), WAL_START + commits[2].startBlock, 'zeroed first block');
      assert.match(error.message, /commit 103 is damaged/);
      assert.match(error.message, /commit 10[4-6] at block \d+/);
    });
  });

  describe('blocks that are not part of the chain', () => {
    it('ignores stale blocks of an older lap after the end, whatever their place in their commit', () => {
      for (let length = 1; length <= 6; length++) {
        const image = lappedImage(32, 101);
        const commits = Array.from({ length }, (_, i) => image.append(1 + (i % 3)));
        const scan = image.scan(0, 101);
        assertScan(scan, { commits, nextBlock: image.head, nextSequence: 101 + length }, `${length} commits`);
        assert.equal(scan.stop, 'end');
      }
    });

    it('ignores blocks of another store, even with later sequences that would prove durability', () => {
      const image = lappedImage(32, 101);
      const commits = [2, 1, 2].map((size) => image.append(size));
      // Another store's commits 104.. right where ours would continue, claiming everything durable.
      const foreign = new WalImage(32, 104);
      foreign.jumpTo(image.head, 104);
      for (let i = 0; i < 5; i++) foreign.append(2, { storeTag: OTHER_TAG, durableSequence: 1000 });
      image.bytes.set(foreign.bytes.subarray(image.head * BLOCK_SIZE, foreign.head * BLOCK_SIZE), image.head * BLOCK_SIZE);
      const scan = image.scan(0, 101);
      assertScan(scan, { commits, nextBlock: 5, nextSequence: 104 });
      assert.equal(scan.stop, 'end');

      // A damaged commit whose only "later commits" belong to another store is a torn tail.
      image.setBlock(commits[2].startBlock + 1, withBitFlipped(image.block(commits[2].startBlock + 1), 100));
      const torn = image.scan(0, 101);
      assertScan(torn, { commits: commits.slice(0, 2), nextBlock: 3, nextSequence: 103 });
      assert.equal(torn.stop, 'torn');
    });

    it('ignores the leftover blocks of an earlier, torn attempt at a commit', () => {
      // After a torn 2-block commit 104 the writer wrote a 1-block 104; the old
      // attempt's blocks (sequence 104, durable 103) remain beyond it.
      const image = lappedImage(32, 101);
      const commits = [1, 1, 1].map((size) => image.append(size));
      image.writeAt(image.head + 2, 104, 2);
      const rewritten = image.append(1);
      const scan = image.scan(0, 101);
      assertScan(scan, { commits: [...commits, rewritten], nextBlock: 4, nextSequence: 105 });
    });
  });

  describe('any damage (property)', () => {
    it('never returns a commit that differs from what was written, and throws nothing but FormatError', () => {
      fc.assert(
        fc.property(
          // At most 21 blocks (+ 2 skipped at a wrap): the chain never overwrites itself.
          fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 7, size: 'max' }),
          fc.integer({ min: 0, max: 23 }),
          fc.array(
            fc.oneof(
              fc.record({ kind: fc.constant('flip' as const), block: fc.nat(23), bit: fc.nat(BLOCK_SIZE * 8 - 1) }, { noNullPrototype: true }),
              fc.record({ kind: fc.constant('zero' as const), block: fc.nat(23) }, { noNullPrototype: true }),
              fc.record({ kind: fc.constant('copy' as const), block: fc.nat(23), from: fc.nat(23) }, { noNullPrototype: true }),
            ),
            { maxLength: 3 },
          ),
          (sizes, start, edits) => {
            const image = lappedImage(24, 1000);
            image.jumpTo(start, 1000);
            const written = new Map(sizes.map((size) => image.append(size)).map((commit) => [commit.sequence, commit]));
            const first = written.get(1000);
            assert.ok(first !== undefined);
            for (const edit of edits) {
              if (edit.kind === 'flip') image.setBlock(edit.block, withBitFlipped(image.block(edit.block), edit.bit));
              if (edit.kind === 'zero') image.setBlock(edit.block, new Uint8Array(BLOCK_SIZE));
              if (edit.kind === 'copy') image.setBlock(edit.block, image.block(edit.from).slice());
            }
            let scan: WalScan;
            try {
              scan = image.scan(first.startBlock, 1000);
            } catch (error) {
              assert.ok(error instanceof FormatError, `expected a FormatError, got ${String(error)}`);
              assert.equal(error.structure, 'wal');
              assert.ok(error.blockIndex !== undefined && error.blockIndex >= WAL_START && error.blockIndex < WAL_START + 24);
              return;
            }
            scan.commits.forEach((commit, i) => {
              assert.equal(commit.sequence, 1000 + i, 'consecutive sequences');
              const original = written.get(commit.sequence);
              assert.ok(original !== undefined, `commit ${commit.sequence} was never written`);
              assert.deepEqual(commit.payload, original.payload, `commit ${commit.sequence} came back changed`);
            });
            if (edits.length === 0) assert.equal(scan.commits.length, sizes.length, 'an undamaged chain is found whole');
          },
        ),
        { seed: PROPERTY_SEED, numRuns: 1500 },
      );
    });

    it('finds every commit but a torn last one, wherever the chain starts (property)', () => {
      fc.assert(
        fc.property(
          fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 7, size: 'max' }),
          fc.integer({ min: 0, max: 23 }),
          fc.array(fc.constantFrom<BlockState>(...BLOCK_STATES), { minLength: 4, maxLength: 4 }),
          (sizes, start, states) => {
            const image = lappedImage(24, 1000);
            image.jumpTo(start, 1000);
            const commits = sizes.slice(0, -1).map((size) => image.append(size));
            const nextBlock = image.head;
            const lastSize = sizes[sizes.length - 1];
            const lastStart = image.head + lastSize > 24 ? 0 : image.head;
            const before = Array.from({ length: lastSize }, (_, i) => image.block(lastStart + i).slice());
            const last = image.append(lastSize);
            const changed = states.slice(0, lastSize).map((state, i) => applyState(image, last.startBlock + i, state, before[i], i));
            const intact = !changed.some(Boolean);
            const expected = intact
              ? { commits: [...commits, last], nextBlock: image.head, nextSequence: 1000 + sizes.length }
              : { commits, nextBlock, nextSequence: 999 + sizes.length };
            assertScan(image.scan(start, 1000), expected);
          },
        ),
        { seed: PROPERTY_SEED, numRuns: 500 },
      );
    });
  });
});


describe('WalSummary', () => {
  // Recovery reads the region through two buffers it reuses chunk after
  // chunk, and keeps views into the commits' payloads: a payload must not
  // depend on the bytes given to add() once it returns.
  it('gives commits payloads of their own: one view of its chunk\'s copy when the commit lies in one chunk, a copy when it straddles two', () => {
    const image = lappedImage(24, 500);
    image.jumpTo(0, 500);
    const commits = [1, 2, 3, 3, 2].map((size) => image.append(size));
    const chunkBlocks = 8;
    const summary = new WalSummary(24, BLOCK_SIZE, WAL_START, TAG, 500);
    const chunk = new Uint8Array(chunkBlocks * BLOCK_SIZE);
    for (let first = 0; first < 24; first += chunkBlocks) {
      chunk.set(image.bytes.subarray(first * BLOCK_SIZE, (first + chunkBlocks) * BLOCK_SIZE));
      summary.add(first, chunk);
    }
    chunk.fill(0xee);
    const scan = scanWalBlocks(summary, 0, 500);
    assertScan(scan, { commits, nextBlock: 11, nextSequence: 505 });
    // Blocks 0-5 (commits 500-502) came in the first chunk, 9-10 (504) in the second; 503 (6-8) straddles them.
    const [c500, c501, c502, c503, c504] = scan.commits;
    assert.equal(c501.payload.buffer, c500.payload.buffer, 'commits of one chunk: views of one copy');
    assert.equal(c502.payload.buffer, c500.payload.buffer);
    assert.notEqual(c504.payload.buffer, c500.payload.buffer, 'each chunk has a copy of its own');
    assert.notEqual(c503.payload.buffer, c500.payload.buffer, 'a commit over two chunks is copied');
    assert.notEqual(c503.payload.buffer, c504.payload.buffer);
    for (const commit of scan.commits) assert.notEqual(commit.payload.buffer, chunk.buffer);
  });
});
