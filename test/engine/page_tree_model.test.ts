// Model-based test of PageTree against a sorted Map: random batches of sets
// and deletes, gets (cached and not), ranges (bounds, inclusive or not,
// reversed), snapshots checked against the model as of the snapshot even
// when iterated across later writes and checkpoints, checkpoints begun,
// written, completed or aborted at random points with writes in between,
// reopening from the last completed checkpoint, and caches small enough
// that pages are evicted and read again. Keys up to the size limit and
// entries up to 76 % of a page force multi-way splits, merges and borrows.
// Fills of up to 120 neighbouring keys (long ones too) grow the tree a level
// or two, and range deletes after a checkpoint, with few pages in memory,
// leave one-child branches and empty leaves for repairUnderflows(): the
// coverage line counts both (`underflows`, `repairs`). Against a repair that
// forgets its keys without mending them, a run fails with "an empty leaf";
// before the fills it passed (underflows 0-2, repairs 0).
import assert from 'node:assert/strict';

import fc from 'fast-check';

import { NOT_CACHED, PageTree, type CheckpointPlan, type PageRef, type TreeNode, type TreeSnapshot } from '../../engine/page_tree.js';
import type { IndexEntry } from '../../engine/store_index.js';
import type { RangeOptions } from '../../engine/tree_cursor.js';
import {
  applyBatch,
  collect,
  describeEntry,
  describePairs,
  entryBytes,
  extentEntry,
  FakeCheckpointer,
  FakePageStore,
  inlineEntry,
  modelRange,
  treeOptions,
} from './page_tree_fakes.js';

/** Fixed so a failure reproduces; fast-check prints it (and the shrunk path) on failure. */
const SEED = Number(process.env.RINGSTORE_PAGE_TREE_SEED ?? 0x70616765);
const RUNS = Number(process.env.RINGSTORE_PAGE_TREE_RUNS ?? 40);
const OPS_MAX = 200;
/** The largest entry is this share of a page (a PUT_EXTENTS record of a long key is ~76 % of 4 KiB). */
const ENTRY_SHARE_MAX = 0.76;
/** Keys a fill sets, and a deleteRun deletes, at most: enough for a level of long-key branches. */
const FILL_COUNT_MAX = 120;
/** Fills made so far (all runs): each fill's keys differ from every earlier one's. */
let fillsMade = 0;

interface Config {
  readonly capacityBytes: number;
  readonly keySizeMax: number;
  readonly cacheBytesMax: number;
}

/** Entries are built when run, from a share of the largest entry that fits next to their key. */
interface EntrySpec {
  readonly permille: number;
  readonly tag: number;
  readonly extents: boolean;
}

type Write = { readonly key: string; readonly entry: EntrySpec | undefined };

type Op =
  | { readonly type: 'batch'; readonly writes: readonly Write[] }
  /** Deletes `count` neighbouring keys in one batch, from the key at `permille` of the way through (a range clear). */
  | { readonly type: 'deleteRun'; readonly permille: number; readonly count: number }
  /**
   * Sets `count` new neighbouring keys in one batch, each `prefix` and a
   * counter, long ones as long as keys go: the tree grows levels that
   * deleteRun, after a checkpoint, takes apart with few pages in memory
   * (branches and leaves the repair has to mend).
   */
  | { readonly type: 'fill'; readonly prefix: string; readonly count: number; readonly long: boolean; readonly permille: number }
  | { readonly type: 'get'; readonly key: string }
  | { readonly type: 'range'; readonly snapshot: number | undefined; readonly range: RangeOptions }
  | { readonly type: 'snapshot' }
  | { readonly type: 'drop'; readonly snapshot: number }
  | { readonly type: 'interleaved'; readonly snapshot: number; readonly range: RangeOptions; readonly writes: readonly Write[]; readonly checkpoint: boolean }
  | { readonly type: 'begin'; readonly writeNow: boolean }
  | { readonly type: 'complete' }
  | { readonly type: 'abort' }
  | { readonly type: 'reopen' };

const CONFIGS: readonly Config[] = [
  { capacityBytes: 4096, keySizeMax: 1024, cacheBytesMax: 1 << 20 },
  { capacityBytes: 4096, keySizeMax: 1024, cacheBytesMax: 0 },
  { capacityBytes: 256, keySizeMax: 40, cacheBytesMax: 3000 },
  { capacityBytes: 256, keySizeMax: 40, cacheBytesMax: 0 },
];

function keyArbitrary(config: Config): fc.Arbitrary<string> {
  const short = fc.string({ unit: fc.constantFrom('a', 'b', 'c', 'm', '\x00', '\xff'), minLength: 1, maxLength: 4 });
  // Long keys share long prefixes, so separators are long too (deep trees of small branches).
  const long = fc
    .tuple(fc.constantFrom('a', 'b', 'm'), fc.integer({ min: 1, max: config.keySizeMax }), fc.string({ unit: fc.constantFrom('a', 'b', 'z'), maxLength: 3 }))
    .map(([head, length, tail]) => (head.repeat(length) + tail).slice(0, config.keySizeMax));
  return fc.oneof({ arbitrary: short, weight: 3 }, { arbitrary: long, weight: 1 });
}

function opArbitrary(config: Config): fc.Arbitrary<Op> {
  const key = keyArbitrary(config);
  const entry: fc.Arbitrary<EntrySpec> = fc.record({
    permille: fc.oneof(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 1000 })),
    tag: fc.integer({ min: 0, max: 255 }),
    extents: fc.boolean(),
  });
  const write: fc.Arbitrary<Write> = fc.record({ key, entry: fc.option(entry, { freq: 4, nil: undefined }) });
  const writes = fc.array(write, { minLength: 1, maxLength: 16, size: 'max' });
  const bound = fc.option(key, { nil: undefined });
  const range: fc.Arbitrary<RangeOptions> = fc.record({ low: bound, lowInclusive: fc.boolean(), high: bound, highInclusive: fc.boolean(), reverse: fc.boolean() });
  const index = fc.nat({ max: 7 });
  return fc.oneof(
    { arbitrary: writes.map((w): Op => ({ type: 'batch', writes: w })), weight: 12 },
    { arbitrary: fc.record({ permille: fc.nat({ max: 999 }), count: fc.integer({ min: 2, max: FILL_COUNT_MAX }) }).map((r): Op => ({ type: 'deleteRun', ...r })), weight: 2 },
    {
      arbitrary: fc
        .record({ prefix: fc.constantFrom('b', 'm', 'mm', 'z'), count: fc.integer({ min: 8, max: FILL_COUNT_MAX }), long: fc.boolean(), permille: fc.nat({ max: 1000 }) })
        .map((r): Op => ({ type: 'fill', ...r })),
      weight: 1,
    },
    { arbitrary: key.map((k): Op => ({ type: 'get', key: k })), weight: 3 },
    { arbitrary: fc.record({ snapshot: fc.option(index, { nil: undefined }), range }).map((r): Op => ({ type: 'range', ...r })), weight: 2 },
    { arbitrary: fc.constant<Op>({ type: 'snapshot' }), weight: 1 },
    { arbitrary: index.map((i): Op => ({ type: 'drop', snapshot: i })), weight: 1 },
    { arbitrary: fc.record({ snapshot: index, range, writes, checkpoint: fc.boolean() }).map((r): Op => ({ type: 'interleaved', ...r })), weight: 2 },
    { arbitrary: fc.boolean().map((writeNow): Op => ({ type: 'begin', writeNow })), weight: 2 },
    { arbitrary: fc.constant<Op>({ type: 'complete' }), weight: 2 },
    { arbitrary: fc.constant<Op>({ type: 'abort' }), weight: 1 },
    { arbitrary: fc.constant<Op>({ type: 'reopen' }), weight: 1 },
  );
}

function entryOf(config: Config, key: string, spec: EntrySpec): IndexEntry {
  const largest = Math.floor(config.capacityBytes * ENTRY_SHARE_MAX);
  const room = largest - entryBytes(key, inlineEntry(0, 0));
  if (spec.extents && room >= 28) return extentEntry(1 + (spec.permille % 50), spec.tag);
  const entry = inlineEntry(Math.max(0, Math.floor((room * spec.permille) / 1000)), spec.tag);
  assert.ok(entryBytes(key, entry) <= config.capacityBytes);
  return entry;
}

interface Running {
  readonly plan: CheckpointPlan;
  assigned: Map<TreeNode, PageRef> | undefined;
  readonly model: Map<string, IndexEntry>;
}

/** What the runs exercised, printed after each property so a vacuous run shows. */
const coverage = { ops: 0, heightMax: 0, keysMax: 0, completed: 0, freed: 0, reused: 0, reads: 0, underflows: 0, repairs: 0 };

class Harness {
  readonly store = new FakePageStore();
  tree: PageTree;
  readonly checkpointer: FakeCheckpointer;
  readonly model = new Map<string, IndexEntry>();
  durableModel = new Map<string, IndexEntry>();
  readonly snapshots: { snapshot: TreeSnapshot; model: Map<string, IndexEntry> }[] = [];
  running: Running | undefined;

  constructor(readonly config: Config) {
    this.tree = new PageTree(treeOptions(this.store, config), undefined, 0);
    this.checkpointer = new FakeCheckpointer(this.store, () => this.tree);
  }

  async write(writes: readonly Write[]): Promise<void> {
    const operations = writes.map(({ key, entry }) => ({ key, entry: entry === undefined ? undefined : entryOf(this.config, key, entry) }));
    const previous = await applyBatch(this.tree, operations);
    for (let index = 0; index < operations.length; index++) {
      const { key, entry } = operations[index]!;
      assert.equal(describeEntry(previous[index]), describeEntry(this.model.get(key)), `previous entry of ${JSON.stringify(key.slice(0, 20))}`);
      if (entry === undefined) this.model.delete(key);
      else this.model.set(key, entry);
    }
    assert.equal(this.tree.size, this.model.size);
    if (this.tree.underflowCount > 0) coverage.underflows++;
  }

  /** What the store's checkpointer does first: a branch a delete left with one child is no page. */
  async repair(): Promise<void> {
    const before = this.tree.repairCount;
    while (this.tree.underflowCount > 0) await this.tree.repairUnderflows();
    coverage.repairs += this.tree.repairCount - before;
  }

  async compare(snapshot: TreeSnapshot, model: Map<string, IndexEntry>, range: RangeOptions, what: string): Promise<void> {
    const expected = modelRange(model, range);
    assert.deepEqual(describePairs(await collect(this.tree, snapshot, range)), describePairs(expected), `${what} ${JSON.stringify(range)}`);
    // The same range a leaf at a time (what scans read): runs never empty, and as many keys.
    let keyCount = 0;
    for await (const run of this.tree.runs(snapshot, range)) {
      const length = (run.end - run.first) * run.step;
      assert.ok(length > 0, `${what}: an empty run`);
      keyCount += length;
    }
    assert.equal(keyCount, expected.length, `${what}: keys in runs`);
  }

  async checkpointNow(): Promise<void> {
    if (this.running !== undefined) return;
    await this.repair();
    const model = new Map(this.model);
    await this.checkpointer.run(this.tree.beginCheckpoint());
    this.durableModel = model;
  }

  async run(op: Op): Promise<void> {
    coverage.ops++;
    coverage.heightMax = Math.max(coverage.heightMax, this.tree.height);
    coverage.keysMax = Math.max(coverage.keysMax, this.tree.size);
    switch (op.type) {
      case 'batch':
        await this.write(op.writes);
        break;
      case 'deleteRun': {
        const keys = [...this.model.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        const first = Math.floor((keys.length * op.permille) / 1000);
        const run = keys.slice(first, first + op.count);
        if (run.length > 0) await this.write(run.map((key) => ({ key, entry: undefined })));
        break;
      }
      case 'fill': {
        const fill = fillsMade++;
        const stem = op.long ? op.prefix.repeat(this.config.keySizeMax) : op.prefix;
        const writes: Write[] = [];
        for (let index = 0; index < op.count; index++) {
          const counter = `${fill.toString(36)}.${index.toString(36).padStart(2, '0')}`;
          writes.push({ key: stem.slice(0, this.config.keySizeMax - counter.length) + counter, entry: { permille: op.permille % 60, tag: index & 0xff, extents: false } });
        }
        await this.write(writes);
        break;
      }
      case 'get': {
        const expected = describeEntry(this.model.get(op.key));
        const cached = this.tree.getCached(op.key);
        if (cached !== NOT_CACHED) assert.equal(describeEntry(cached), expected, 'getCached');
        assert.equal(describeEntry(await this.tree.get(op.key)), expected, 'get');
        break;
      }
      case 'range': {
        const held = op.snapshot === undefined || this.snapshots.length === 0 ? undefined : this.snapshots[op.snapshot % this.snapshots.length]!;
        if (held !== undefined) await this.compare(held.snapshot, held.model, op.range, 'snapshot range');
        else {
          const snapshot = this.checkpointer.hold(this.tree.snapshot());
          await this.compare(snapshot, this.model, op.range, 'range');
          this.checkpointer.drop(snapshot);
        }
        break;
      }
      case 'snapshot':
        if (this.snapshots.length < 8) this.snapshots.push({ snapshot: this.checkpointer.hold(this.tree.snapshot()), model: new Map(this.model) });
        break;
      case 'drop':
        if (this.snapshots.length > 0) this.checkpointer.drop(this.snapshots.splice(op.snapshot % this.snapshots.length, 1)[0]!.snapshot);
        break;
      case 'interleaved': {
        if (this.snapshots.length === 0) break;
        const held = this.snapshots[op.snapshot % this.snapshots.length]!;
        const expected = describePairs(modelRange(held.model, op.range));
        const iterator = this.tree.entries(held.snapshot, op.range)[Symbol.asyncIterator]();
        const seen: [string, IndexEntry][] = [];
        for (let step = 0; step < expected.length / 2; step++) {
          const next = await iterator.next();
          assert.ok(next.done !== true);
          seen.push(next.value);
        }
        await this.write(op.writes);
        if (op.checkpoint) await this.checkpointNow();
        for (;;) {
          const next = await iterator.next();
          if (next.done === true) break;
          seen.push(next.value);
        }
        assert.deepEqual(describePairs(seen), expected, 'a snapshot iterated across writes');
        break;
      }
      case 'begin':
        if (this.running !== undefined) break;
        await this.repair();
        this.running = { plan: this.tree.beginCheckpoint(), assigned: undefined, model: new Map(this.model) };
        if (op.writeNow) this.running.assigned = await this.checkpointer.write(this.running.plan);
        break;
      case 'complete':
        if (this.running === undefined) break;
        this.running.assigned ??= await this.checkpointer.write(this.running.plan);
        this.checkpointer.complete(this.running.plan, this.running.assigned);
        coverage.completed++;
        this.durableModel = this.running.model;
        this.running = undefined;
        break;
      case 'abort':
        if (this.running === undefined) break;
        this.checkpointer.abort(this.running.plan, this.running.assigned ?? new Map());
        this.running = undefined;
        break;
      case 'reopen':
        await this.checkReopen();
        break;
    }
    this.tree.checkInvariants();
  }

  /** A fresh tree over the last completed checkpoint holds exactly the model as of it. */
  async checkReopen(): Promise<void> {
    const { root, keyCount } = this.checkpointer.durable;
    const reopened = new PageTree(treeOptions(this.store, this.config), root, keyCount);
    assert.equal(reopened.size, this.durableModel.size);
    assert.deepEqual(describePairs(await collect(reopened, reopened.snapshot())), describePairs(modelRange(this.durableModel)), 'reopened');
    for (const key of [...this.durableModel.keys()].slice(0, 5)) assert.equal(describeEntry(await reopened.get(key)), describeEntry(this.durableModel.get(key)));
  }

  async finish(): Promise<void> {
    if (this.running !== undefined) await this.run({ type: 'complete' });
    for (const { snapshot, model } of this.snapshots) await this.compare(snapshot, model, {}, 'snapshot at the end');
    await this.compare(this.tree.snapshot(), this.model, {}, 'tree at the end');
    await this.checkpointNow();
    await this.checkReopen();
    for (const { snapshot } of this.snapshots.splice(0)) this.checkpointer.drop(snapshot);
    // Pages replaced while the last plan ran are in the G of the next one.
    await this.checkpointNow();
    this.checkpointer.checkNoLeaks();
    coverage.freed += this.checkpointer.freedCount;
    coverage.reused += this.checkpointer.reusedCount;
    coverage.reads += this.store.reads;
  }
}

function describeOp(op: Op): string {
  const short = (key: string | undefined): string => (key === undefined ? '-' : key.length > 8 ? `${JSON.stringify(key.slice(0, 4))}…${key.length}` : JSON.stringify(key));
  const writes = (list: readonly Write[]): string => list.map((w) => `${w.entry === undefined ? 'del' : 'set'} ${short(w.key)}`).join(', ');
  switch (op.type) {
    case 'batch':
      return `batch(${writes(op.writes)})`;
    case 'deleteRun':
      return `deleteRun(${op.permille}‰, ${op.count})`;
    case 'fill':
      return `fill(${JSON.stringify(op.prefix)}${op.long ? ' long' : ''}, ${op.count}, ${op.permille}‰)`;
    case 'interleaved':
      return `interleaved(#${op.snapshot}, ${writes(op.writes)}${op.checkpoint ? ', checkpoint' : ''})`;
    case 'get':
      return `get(${short(op.key)})`;
    case 'range':
      return `range(${op.snapshot ?? 'now'}, ${short(op.range.low)}..${short(op.range.high)}${op.range.reverse === true ? ' reverse' : ''})`;
    default:
      return JSON.stringify(op);
  }
}

describe('PageTree model', function () {
  this.timeout(600_000);

  for (const config of CONFIGS) {
    it(`matches a sorted Map through writes, snapshots, ranges, checkpoints and reopens (page ${config.capacityBytes} B, keys <= ${config.keySizeMax}, cache ${config.cacheBytesMax} B; seed ${SEED})`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(opArbitrary(config), { minLength: 1, maxLength: OPS_MAX, size: 'max' }), async (ops) => {
          const harness = new Harness(config);
          for (const op of ops) await harness.run(op);
          await harness.finish();
        }),
        {
          seed: SEED,
          numRuns: RUNS,
          verbose: 1,
          examples: [],
          reporter: (details) => {
            if (details.failed) {
              const ops = details.counterexample?.[0] as Op[] | undefined;
              throw new Error(
                `seed ${SEED}, path ${details.counterexamplePath}: ${details.errorInstance instanceof Error ? details.errorInstance.stack : String(details.errorInstance)}\n${ops?.map(describeOp).join('\n') ?? ''}`,
              );
            }
          },
        },
      );
      console.log(`      exercised: ${JSON.stringify(coverage)}`);
      for (const name of Object.keys(coverage) as (keyof typeof coverage)[]) coverage[name] = 0;
    });
  }
});
