// Fakes for the PageTree tests: pages on a Map instead of a disk, a
// checkpointer that runs plans against it and checks every freed block, and
// entries and measures. Not a test file itself (mocha runs only *.test.js).
import assert from 'node:assert/strict';

import { PageTree, type CheckpointPlan, type DecodedTreePage, type PageRef, type PageTreeOptions, type TreeNode, type TreePageIo, type TreeSnapshot } from '../../engine/page_tree.js';
import { StoreCorruptError } from '../../engine/store_error.js';
import type { IndexEntry } from '../../engine/store_index.js';

/** A fake codec's measures: 8 B per entry plus key and value; a child is 12 B (block, CRC) plus its separator. */
export function entryBytes(key: string, entry: IndexEntry): number {
  const value = entry.value;
  return 8 + key.length + (value instanceof Uint8Array ? value.byteLength : 16 + 12 * value.extents.length);
}

export function childBytes(separator: string): number {
  return 12 + separator.length;
}

/** An inline entry of `size` bytes all equal to `tag`: two entries are equal iff their size and tag are. */
export function inlineEntry(size: number, tag: number): IndexEntry {
  return { isString: true, value: new Uint8Array(size).fill(tag) };
}

export function extentEntry(blockCount: number, tag: number): IndexEntry {
  return { isString: false, value: { kind: 'extents', length: blockCount * 512, crc: tag, extents: [{ startBlock: 1000 + tag, blockCount }] } };
}

/** A short text naming an entry's content, for comparisons and messages. */
export function describeEntry(entry: IndexEntry | undefined): string {
  if (entry === undefined) return 'none';
  const value = entry.value;
  return value instanceof Uint8Array ? `inline ${value.byteLength}:${value[0] ?? '-'}` : `extents ${value.length}:${value.crc}`;
}

/**
 * Pages on a Map<block, page>, deep-copied both ways (the tree must not
 * share arrays with its store). Each write gets a fresh CRC, so a read
 * through a ref of a block's earlier page is caught as corruption.
 */
export class FakePageStore implements TreePageIo {
  readonly pages = new Map<number, { page: DecodedTreePage; crc: number }>();
  reads = 0;
  /** Reads wait a macrotask, so reads, writes and checkpoints interleave. */
  delayed = true;
  #nextCrc = 1;

  async read(ref: PageRef, level: number): Promise<DecodedTreePage> {
    this.reads++;
    if (this.delayed) await new Promise((resolve) => setImmediate(resolve));
    const stored = this.pages.get(ref.block);
    if (stored === undefined) throw new StoreCorruptError('page', 'no page there (the fake store has none)', ref.block);
    if (stored.crc !== ref.crc) throw new StoreCorruptError('page', `CRC ${ref.crc} expected, the page has ${stored.crc}`, ref.block);
    if ((stored.page.kind === 'leaf') !== (level === 0)) throw new StoreCorruptError('page', 'page kind does not match its level', ref.block);
    return structuredClone(stored.page);
  }

  write(block: number, page: DecodedTreePage): PageRef {
    const crc = this.#nextCrc++;
    this.pages.set(block, { page: structuredClone(page), crc });
    return { block, crc };
  }

  /** Every block reachable from `root` in the stored pages. */
  reachable(root: PageRef | undefined, into = new Set<number>()): Set<number> {
    if (root === undefined) return into;
    const stack = [root];
    while (stack.length > 0) {
      const ref = stack.pop()!;
      if (into.has(ref.block)) continue;
      into.add(ref.block);
      const stored = this.pages.get(ref.block);
      assert.ok(stored !== undefined && stored.crc === ref.crc, `block ${ref.block} reachable but not stored as ref ${JSON.stringify(ref)}`);
      if (stored.page.kind === 'branch') {
        assert.ok(stored.page.page === undefined, 'the fakes store branches as arrays');
        stack.push(...stored.page.children);
      }
    }
    return into;
  }
}

export interface DurableRoot {
  readonly root: { ref: PageRef; level: number } | undefined;
  readonly keyCount: number;
}

/**
 * Runs checkpoint plans against a FakePageStore as the store would: blocks
 * from a free list (else new ones), pages written in plan order, complete(),
 * then the garbage freed. A freed block must not be reachable from the new
 * root; it is reused only once the snapshots that were live when it was
 * freed are released, and never while reachable from the durable root or a
 * live snapshot.
 */
export class FakeCheckpointer {
  durable: DurableRoot = { root: undefined, keyCount: 0 };
  #nextBlock = 1;
  readonly #free: number[] = [];
  /** Freed blocks waiting for the snapshots live when they were freed. */
  #deferred: { blocks: number[]; holders: Set<TreeSnapshot> }[] = [];
  readonly live = new Set<TreeSnapshot>();
  freedCount = 0;
  reusedCount = 0;

  constructor(
    readonly store: FakePageStore,
    readonly tree: () => PageTree,
  ) {}

  hold(snapshot: TreeSnapshot): TreeSnapshot {
    this.live.add(snapshot);
    return snapshot;
  }

  drop(snapshot: TreeSnapshot): void {
    this.live.delete(snapshot);
    for (const deferred of this.#deferred) deferred.holders.delete(snapshot);
    const ready = this.#deferred.filter((deferred) => deferred.holders.size === 0);
    this.#deferred = this.#deferred.filter((deferred) => deferred.holders.size > 0);
    for (const { blocks } of ready) this.#free.push(...blocks);
  }

  /** Encodes and "writes" the plan's nodes; the assignments for complete(). */
  async write(plan: CheckpointPlan): Promise<Map<TreeNode, PageRef>> {
    const protectedBlocks = this.store.reachable(this.durable.root?.ref);
    for (const snapshot of this.live) {
      await this.tree().walk(snapshot, (_node, ref) => {
        if (ref !== undefined) protectedBlocks.add(ref.block);
      });
    }
    const assigned = new Map<TreeNode, PageRef>();
    for (const node of plan.dirtyNodes) {
      let block = this.#free.pop();
      if (block === undefined) block = this.#nextBlock++;
      else {
        this.reusedCount++;
        assert.ok(!protectedBlocks.has(block), `block ${block} handed out while reachable from the durable root or a live snapshot`);
      }
      const page = plan.content(node, (child) => assigned.get(child));
      assigned.set(node, this.store.write(block, page));
    }
    return assigned;
  }

  complete(plan: CheckpointPlan, assigned: Map<TreeNode, PageRef>): void {
    const rootRef = plan.rootRef((node) => assigned.get(node));
    plan.complete(assigned);
    this.durable = { root: rootRef === undefined ? undefined : { ref: rootRef, level: plan.level }, keyCount: plan.keyCount };
    const freed = plan.garbageBlocks();
    const reachable = this.store.reachable(rootRef);
    assert.equal(new Set(freed).size, freed.length, `a block freed twice by one checkpoint: ${freed.join(',')}`);
    for (const block of freed) {
      assert.ok(!reachable.has(block), `freed block ${block} is reachable from the new root`);
      assert.ok(!this.#free.includes(block), `freed block ${block} was already free`);
    }
    this.freedCount += freed.length;
    if (this.live.size === 0) this.#free.push(...freed);
    else this.#deferred.push({ blocks: freed, holders: new Set(this.live) });
  }

  /** An aborted plan's blocks were never referenced by a durable root: free at once. */
  abort(plan: CheckpointPlan, assigned: Map<TreeNode, PageRef>): void {
    plan.abort();
    for (const ref of assigned.values()) this.#free.push(ref.block);
  }

  /**
   * With no snapshot live and nothing written since the last checkpoint
   * completed, every block ever handed out is reachable from the durable
   * root or free, never both: no page leaked, none freed while in use.
   */
  checkNoLeaks(): void {
    assert.equal(this.live.size, 0);
    assert.equal(this.#deferred.length, 0);
    const reachable = this.store.reachable(this.durable.root?.ref);
    const free = new Set(this.#free);
    assert.equal(free.size, this.#free.length, 'a block is twice in the free list');
    for (let block = 1; block < this.#nextBlock; block++) {
      assert.ok(reachable.has(block) !== free.has(block), `block ${block} is ${reachable.has(block) ? 'reachable and free' : 'neither reachable nor free (leaked)'}`);
    }
  }

  async run(plan: CheckpointPlan): Promise<void> {
    this.complete(plan, await this.write(plan));
  }
}

export const DEFAULT_CAPACITY_BYTES = 4096;

export function treeOptions(store: FakePageStore, overrides: Partial<PageTreeOptions> = {}): PageTreeOptions {
  return { io: store, capacityBytes: DEFAULT_CAPACITY_BYTES, entryBytes, childBytes, cacheBytesMax: 1 << 20, ...overrides };
}

/** All entries of a snapshot (or the current tree) in order. */
export async function collect(tree: PageTree, snapshot: TreeSnapshot, range: Parameters<PageTree['entries']>[1] = {}): Promise<[string, IndexEntry][]> {
  const out: [string, IndexEntry][] = [];
  for await (const pair of tree.entries(snapshot, range)) out.push(pair);
  return out;
}

/** Sorted (bytewise) entries of a model map within a range. */
export function modelRange(
  model: ReadonlyMap<string, IndexEntry>,
  range: { low?: string | undefined; lowInclusive?: boolean | undefined; high?: string | undefined; highInclusive?: boolean | undefined; reverse?: boolean | undefined } = {},
): [string, IndexEntry][] {
  const keys = [...model.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const inRange = keys.filter((key) => {
    if (range.low !== undefined && (key < range.low || (key === range.low && range.lowInclusive === false))) return false;
    if (range.high !== undefined && (key > range.high || (key === range.high && range.highInclusive === false))) return false;
    return true;
  });
  if (range.reverse === true) inRange.reverse();
  return inRange.map((key) => [key, model.get(key)!]);
}

export function describePairs(pairs: [string, IndexEntry][]): string[] {
  return pairs.map(([key, entry]) => `${key.length > 12 ? `${key.slice(0, 6)}…(${key.length})` : JSON.stringify(key)}=${describeEntry(entry)}`);
}

/** Sets or deletes keys the way the store applies a batch: prepare, apply synchronously, release. */
export async function applyBatch(tree: PageTree, operations: readonly { key: string; entry: IndexEntry | undefined }[]): Promise<(IndexEntry | undefined)[]> {
  const prepared = await tree.prepare(
    operations.filter(({ entry }) => entry !== undefined).map(({ key }) => key),
    operations.filter(({ entry }) => entry === undefined).map(({ key }) => key),
  );
  try {
    return operations.map(({ key, entry }) => (entry === undefined ? tree.delete(key) : tree.set(key, entry)));
  } finally {
    tree.release(prepared);
  }
}
