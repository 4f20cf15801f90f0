// WalSpace: which blocks of the circular WAL region hold live commits, and
// where the next commit goes. Pure bookkeeping; the placement rule is the
// one format/wal_scan.ts relies on: a commit starts right after the previous
// one, or at block 0 when it does not fit before the region's end.
//
// Live blocks are those of commits after the durable checkpoint; they are
// never overwritten. Emptiness is known from the live list, so head === tail
// with live commits means full.

interface LiveCommit {
  sequence: number;
  startBlock: number;
  blockCount: number;
}

export class WalSpace {
  readonly walBlockCount: number;
  /** Commits not yet covered by a durable checkpoint, in sequence order. */
  readonly #live: LiveCommit[] = [];
  #liveHead = 0;
  /** Where the next commit would start if it fits. */
  #head: number;

  constructor(walBlockCount: number, headBlock: number) {
    if (headBlock < 0 || headBlock >= walBlockCount) throw new RangeError(`WAL head ${headBlock} outside ${walBlockCount} blocks`);
    this.walBlockCount = walBlockCount;
    this.#head = headBlock;
  }

  get headBlock(): number {
    return this.#head;
  }

  /** The oldest live block (the replay start), or the head when nothing is live. */
  get tailBlock(): number {
    return this.#liveHead < this.#live.length ? this.#live[this.#liveHead].startBlock : this.#head;
  }

  /** Blocks between tail and head, skipped ends included. */
  get usedBlockCount(): number {
    if (this.#liveHead === this.#live.length) return 0;
    const tail = this.tailBlock;
    return this.#head > tail ? this.#head - tail : this.walBlockCount - tail + this.#head;
  }

  get fill(): number {
    return this.usedBlockCount / this.walBlockCount;
  }

  /** Start block of the first live commit after `sequence` (the replay start for a checkpoint at it). */
  replayBlockAfter(sequence: number): number {
    for (let i = this.#liveHead; i < this.#live.length; i++) {
      if (this.#live[i].sequence > sequence) return this.#live[i].startBlock;
    }
    return this.#head;
  }

  /** Where a commit of `blockCount` blocks goes, or undefined if the WAL is too full for it now. */
  place(blockCount: number): number | undefined {
    const empty = this.#liveHead === this.#live.length;
    const tail = this.tailBlock;
    const wrapped = !empty && this.#head <= tail;
    if (!wrapped) {
      // Free: [head, end) and [0, tail) (all of it when empty).
      if (this.#head + blockCount <= this.walBlockCount) return this.#head;
      if (blockCount <= (empty ? this.walBlockCount : tail)) return 0;
      return undefined;
    }
    // Free: [head, tail).
    return this.#head + blockCount <= tail ? this.#head : undefined;
  }

  /** Records that commit `sequence` was written at `startBlock`. */
  append(sequence: number, startBlock: number, blockCount: number): void {
    const last = this.#live[this.#live.length - 1];
    if (last !== undefined && sequence !== last.sequence + 1) throw new Error(`ringstore: WAL commit ${sequence} after ${last.sequence}`);
    this.#live.push({ sequence, startBlock, blockCount });
    this.#head = startBlock + blockCount;
    if (this.#head === this.walBlockCount) this.#head = 0;
  }

  /** A durable checkpoint now covers every commit up to `sequence`: their blocks are free. */
  releaseThrough(sequence: number): void {
    while (this.#liveHead < this.#live.length && this.#live[this.#liveHead].sequence <= sequence) this.#liveHead++;
    if (this.#liveHead > 1024 && this.#liveHead * 2 > this.#live.length) {
      this.#live.splice(0, this.#liveHead);
      this.#liveHead = 0;
    }
  }
}
