// ReplayOverlay: the WAL tail an open recovered, readable before the replay
// has applied it to the page tree. Opening after a crash reads and checks
// the tail (recovery.ts), then returns; the replay (wal_replay.ts) goes on in
// the background, reading and copying a leaf for about every record, which
// is most of a crash-open's time and grows with the tail.
//
// Meanwhile point reads (get, has, getMany, read streams) look the key up
// here first: the overlay holds each key's last entry in the tail (or its
// delete), which is its value once the replay ends, so a read sees the same
// value whether the replay has reached its key or not. A key the tail does
// not touch has the same value in the tree before and after the replay.
//
// Writes are checked and encoded when they are called, then held here
// (afterReplay), in call order, and handed to the journal in that order,
// synchronously, the moment the replay ends: they commit after the tail, a
// delete learns whether its key existed, and a close() or flush() called
// after them finishes them. What needs the whole tree as it will be —
// ranges, counts, checkpoints, integrity checks, close — waits for the
// replay (settled()). A replay that fails (damage on its path: a page, the
// free set) fails the store: the held writes are rejected, the waiting calls
// reject with its error, and point reads go on through the overlay and the
// tree (every byte they return is still checked).
import type { PendingCommit } from './recovery.js';
import { TailRole } from './wal_replay.js';
import type { IndexEntry } from './store_index.js';

/** Record indexes of one commit stay below this (a commit holds at most a quarter of the WAL, 2^32 is far above it). */
const RECORD_INDEX_SPAN = 2 ** 32;

/** lookUp()'s answer for a key the WAL tail does not touch: ask the tree. */
export const NOT_IN_TAIL: unique symbol = Symbol('ringstore.NOT_IN_TAIL');

export class ReplayOverlay {
  /** The tail's commits, in order. */
  readonly #commits: readonly PendingCommit[];
  /**
   * Each key's last record in the tail, as commit index × 2^32 + record
   * index: a number, not an entry, so that indexing a long tail makes one
   * key string a record and decodes nothing (lookUp decodes the one asked).
   */
  readonly #lastRecords = new Map<string, number>();
  readonly #settled: Promise<void>;
  #commitsToApply: number;
  /** Until the replay has ended (applied everything, or failed). */
  #pending = true;
  /** Set when the replay ended: with what stopped it, if anything did. */
  #ended: { readonly error: unknown } | undefined;
  /** Writes held until the replay ends, in call order (afterReplay). */
  #held: { run: () => void; fail: (error: unknown) => void }[] = [];

  /**
   * Indexes `commits` (in sequence order) and starts `replay`, which calls
   * `commitApplied` after applying each commit and may ask `tailRole` what
   * a record is among its key's records in the tail (until it settles).
   */
  constructor(commits: readonly PendingCommit[], replay: (commitApplied: () => void, tailRole: (commitIndex: number, recordIndex: number) => TailRole) => Promise<void>) {
    this.#commits = commits;
    if (commits.length >= Number.MAX_SAFE_INTEGER / RECORD_INDEX_SPAN) throw new Error(`ringstore: ${commits.length} commits in a WAL tail`);
    // Each record's TailRole: a key's first record is marked as it is
    // indexed (the index grows), each key's last from the index after (a
    // pass over the keys, not the records; a record both first and last is
    // its key's only one: Last).
    const roles = commits.map((commit) => new Uint8Array(commit.recordCount));
    const lastRecords = this.#lastRecords;
    for (let commitIndex = 0; commitIndex < commits.length; commitIndex++) {
      const commit = commits[commitIndex];
      if (commit.recordCount >= RECORD_INDEX_SPAN) throw new Error(`ringstore: commit ${commit.sequence} holds ${commit.recordCount} records`);
      const commitRoles = roles[commitIndex];
      for (let record = 0; record < commit.recordCount; record++) {
        const keyCount = lastRecords.size;
        lastRecords.set(commit.keyAt(record), commitIndex * RECORD_INDEX_SPAN + record);
        if (lastRecords.size !== keyCount) commitRoles[record] = TailRole.FirstOfSeveral;
      }
    }
    for (const record of lastRecords.values()) roles[Math.floor(record / RECORD_INDEX_SPAN)][record % RECORD_INDEX_SPAN] = TailRole.Last;
    this.#commitsToApply = commits.length;
    // This handler is the promise's first: the held writes reach the
    // journal before anything that awaits settled() runs.
    this.#settled = replay(
      () => this.#commitsToApply--,
      (commitIndex, recordIndex) => roles[commitIndex][recordIndex] as TailRole,
    ).then(
      () => {
        if (this.#commitsToApply !== 0) throw this.#end(new Error(`ringstore: the replay ended with ${this.#commitsToApply} commits of the tail not applied`));
        this.#end(undefined);
        this.#lastRecords.clear();
      },
      (error: unknown) => {
        throw this.#end(error ?? new Error('the WAL replay failed'));
      },
    );
    // The failure reaches callers through settled(); it is never unhandled.
    this.#settled.catch(() => undefined);
  }

  /** Commits of the tail the replay has yet to apply (0 once it has ended). */
  get commitsToApply(): number {
    return this.#commitsToApply;
  }

  /** Whether the replay is still running: no commit may begin meanwhile. */
  get pending(): boolean {
    return this.#pending;
  }

  /**
   * Holds a write until the replay ends: then `start()` runs (synchronously,
   * after the writes held before it) and the result is its promise's; if
   * the replay fails, `failed(error)` gives the error to reject with.
   */
  afterReplay<T>(start: () => Promise<T>, failed: (error: unknown) => unknown): Promise<T> {
    if (!this.#pending) {
      // Ended, but the caller has not let go of the overlay yet (its own
      // handler of settled() runs after the one that ended it): as a held
      // write is handed on then. (Found by a review: a put called a few
      // microtasks after opening a crashed store rejected with an internal
      // error without a code.)
      const ended = this.#ended!;
      if (ended.error !== undefined) return Promise.reject(failed(ended.error));
      try {
        return start();
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return new Promise<T>((resolve, reject) => {
      this.#held.push({
        run: () => {
          try {
            start().then(resolve, reject);
          } catch (error) {
            reject(error);
          }
        },
        fail: (error) => reject(failed(error)),
      });
    });
  }

  /** Ends the replay (failed with `error`, or not): hands the held writes on in order, or rejects them. */
  #end(error: unknown): unknown {
    this.#pending = false;
    this.#ended = { error };
    const held = this.#held.splice(0);
    for (const write of held) {
      if (error === undefined) write.run();
      else write.fail(error);
    }
    return error;
  }

  /**
   * The entry the tail leaves `keyString` with (undefined: deleted), or
   * NOT_IN_TAIL. Once the replay has applied everything the tree answers
   * for every key, so this always says NOT_IN_TAIL.
   */
  lookUp(keyString: string): IndexEntry | undefined | typeof NOT_IN_TAIL {
    const record = this.#lastRecords.get(keyString);
    if (record === undefined) return NOT_IN_TAIL;
    return this.#commits[Math.floor(record / RECORD_INDEX_SPAN)].entryAt(record % RECORD_INDEX_SPAN);
  }

  /** Resolves once every commit of the tail is in the tree; rejects with what stopped the replay. */
  settled(): Promise<void> {
    return this.#settled;
  }
}
