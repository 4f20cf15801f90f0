// Model-based test of BlockStore on the SimulatedDevice: random sequences of
// put / delete / batch / get / range / checkpoint / crash+reopen, checked
// against a Map. A crash happens with writes in flight: every acknowledged
// write must survive, every unacknowledged batch must be all or nothing.
// Two configurations: a few keys (one leaf: every path of the commit and
// crash logic), and hundreds of keys in bulk batches with a page cache of a
// few pages (a tree of many pages, most of them read back from the device,
// split and merged across checkpoints and crashes).
import assert from 'node:assert/strict';

import fc from 'fast-check';

import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { checkStoreImage } from './store_checks.js';

/** Fixed so a failure reproduces; fast-check prints it (and the path) on failure. */
const SEED = Number(process.env.RINGSTORE_MODEL_SEED ?? 20261127);
const RUNS = Number(process.env.RINGSTORE_MODEL_RUNS ?? 25);
const DEVICE_BYTES = 4 << 20;
const WAL_BYTES = 96 << 10; // small: checkpoints and WAL wrap-around happen often
interface ModelConfig {
  name: string;
  keys: string[];
  cacheSizeBytes: number;
  runs: number;
  /** Batches that put or delete up to this many keys at once (0: none). */
  bulkKeysMax: number;
}

const CONFIGS: ModelConfig[] = [
  { name: 'a few keys', keys: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'], cacheSizeBytes: 64 << 10, runs: RUNS, bulkKeysMax: 0 },
  {
    name: 'many more keys than the page cache holds',
    keys: Array.from({ length: 600 }, (_, i) => `key-${String((i * 7919) % 600).padStart(4, '0')}`),
    // 3/4 of it for pages: 12 KiB, three 4 KiB pages of a tree of dozens.
    cacheSizeBytes: 16 << 10,
    runs: RUNS,
    bulkKeysMax: 150,
  },
];

/** The configuration the property being run uses. */
let config: ModelConfig = CONFIGS[0];

type Model = { entries: Map<string, string>; crashes: number };

interface Real {
  device: SimulatedDevice;
  store: BlockStore;
}

function valueOf(tag: string, size: number): string {
  // Deterministic content whose bytes differ per tag and position.
  return (tag + ':').padEnd(size, tag.slice(0, 1) + String(size % 10));
}

async function openStore(device: SimulatedDevice, create: boolean): Promise<BlockStore> {
  return BlockStore.open('model', { device, create, walSizeBytes: WAL_BYTES, blockSize: 512, cacheSizeBytes: config.cacheSizeBytes, encoding: 'string' });
}

class PutCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly key: string, readonly size: number, readonly tag: string) {}
  check = (): boolean => true;
  async run(model: Model, real: Real): Promise<void> {
    const value = valueOf(this.tag, this.size);
    await real.store.put(this.key, value);
    model.entries.set(this.key, value);
  }
  toString = (): string => `put(${this.key}, ${this.size} B)`;
}

class DeleteCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly key: string) {}
  check = (): boolean => true;
  async run(model: Model, real: Real): Promise<void> {
    const existed = await real.store.delete(this.key);
    assert.equal(existed, model.entries.has(this.key), `delete(${this.key}) says existed=${existed}`);
    model.entries.delete(this.key);
  }
  toString = (): string => `delete(${this.key})`;
}

class BatchCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly operations: { key: string; size: number | undefined; tag: string }[]) {}
  check = (): boolean => true;
  async run(model: Model, real: Real): Promise<void> {
    await real.store.batch(
      this.operations.map(({ key, size, tag }) =>
        size === undefined ? { type: 'del' as const, key } : { type: 'put' as const, key, value: valueOf(tag, size) },
      ),
    );
    for (const { key, size, tag } of this.operations) {
      if (size === undefined) model.entries.delete(key);
      else model.entries.set(key, valueOf(tag, size));
    }
  }
  toString = (): string => `batch(${this.operations.map((op) => `${op.size === undefined ? 'del' : 'put'} ${op.key}`).join(', ')})`;
}

class GetAllCommand implements fc.AsyncCommand<Model, Real> {
  check = (): boolean => true;
  async run(model: Model, real: Real): Promise<void> {
    for (const key of new Set([...config.keys, ...model.entries.keys()])) {
      assert.equal(await real.store.get(key), model.entries.get(key), `get(${key})`);
    }
  }
  toString = (): string => 'getAll';
}

class RangeCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly reverse: boolean, readonly gte: string | undefined, readonly limit: number | undefined) {}
  check = (): boolean => true;
  async run(model: Model, real: Real): Promise<void> {
    let expected = [...model.entries.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (this.gte !== undefined) expected = expected.filter(([key]) => key >= this.gte!);
    if (this.reverse) expected.reverse();
    if (this.limit !== undefined) expected = expected.slice(0, this.limit);
    const actual: [string, unknown][] = [];
    for await (const [key, value] of real.store.range({ reverse: this.reverse, gte: this.gte, limit: this.limit })) {
      actual.push([key as string, value]);
    }
    assert.deepEqual(actual, expected);
  }
  toString = (): string => `range(reverse=${this.reverse}, gte=${this.gte}, limit=${this.limit})`;
}

class CheckpointCommand implements fc.AsyncCommand<Model, Real> {
  check = (): boolean => true;
  async run(_model: Model, real: Real): Promise<void> {
    await real.store.checkpoint();
  }
  toString = (): string => 'checkpoint';
}

/**
 * Issues concurrent batches of fresh keys, lets the device run `opsBeforeCrash`
 * more operations, cuts the power, reopens, and checks.
 */
class CrashCommand implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly batches: { size: number; count: number }[],
    readonly opsBeforeCrash: number,
    readonly crashSeed: number,
    readonly tornWrites: boolean,
  ) {}
  check = (): boolean => true;
  async run(model: Model, real: Real): Promise<void> {
    const crashIndex = model.crashes++;
    const batches = this.batches.map(({ size, count }, b) =>
      Array.from({ length: count }, (_, i) => ({ key: `z${crashIndex}-${b}-${i}`, value: valueOf(`c${crashIndex}${b}${i}`, size) })),
    );
    real.device.crashAfter(this.opsBeforeCrash);
    const outcomes = await Promise.allSettled(
      batches.map((batch) => real.store.batch(batch.map(({ key, value }) => ({ type: 'put' as const, key, value })))),
    );
    let state = this.crashSeed;
    const random = (): number => {
      // xorshift32: the crash's choices reproduce from the command's seed.
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) / 0x1_0000_0000;
    };
    const image = real.device.crash({ random, tornWrites: this.tornWrites });
    await real.store.close().catch(() => undefined);
    real.device = image;
    real.store = await openStore(image, false);

    for (const [key, value] of model.entries) {
      assert.equal(await real.store.get(key), value, `acknowledged ${key} lost or changed by the crash`);
    }
    for (const key of config.keys) {
      if (!model.entries.has(key)) assert.equal(await real.store.get(key), undefined, `deleted ${key} came back`);
    }
    for (let b = 0; b < batches.length; b++) {
      const present = await Promise.all(batches[b].map(async ({ key }) => (await real.store.get(key)) !== undefined));
      const all = present.every(Boolean);
      const none = !present.some(Boolean);
      if (outcomes[b].status === 'fulfilled') {
        assert.ok(all, `acknowledged batch ${b} (${batches[b].length} keys) lost keys in the crash`);
      } else {
        assert.ok(all || none, `unacknowledged batch ${b} is partly visible: ${present.map(Number).join('')}`);
      }
      for (const { key, value } of batches[b]) {
        const actual = await real.store.get(key);
        if (actual !== undefined) {
          assert.equal(actual, value, `${key} has wrong data after the crash`);
          model.entries.set(key, value);
        }
      }
    }
    await checkStoreImage(real.store, real.device);
  }
  toString = (): string =>
    `crash(batches=${JSON.stringify(this.batches)}, after ${this.opsBeforeCrash} ops, seed ${this.crashSeed}, torn=${this.tornWrites})`;
}

function commandArbsFor(modelConfig: ModelConfig): fc.Arbitrary<fc.AsyncCommand<Model, Real>>[] {
const keyArb = fc.constantFrom(...modelConfig.keys);
// Inline (< 256 B with 512-byte blocks) and extent values (up to 6 KiB).
const sizeArb = fc.oneof(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 300, max: 6000 }));
const tagArb = fc.string({ minLength: 1, maxLength: 4, unit: fc.constantFrom('p', 'q', 'r', 's', 't') });

const arbs: fc.Arbitrary<fc.AsyncCommand<Model, Real>>[] = [
  fc.tuple(keyArb, sizeArb, tagArb).map(([key, size, tag]) => new PutCommand(key, size, tag)),
  keyArb.map((key) => new DeleteCommand(key)),
  fc
    .array(fc.record({ key: keyArb, size: fc.option(sizeArb, { nil: undefined }), tag: tagArb }), { minLength: 1, maxLength: 5 })
    .map((operations) => new BatchCommand(operations)),
  fc.constant(new GetAllCommand()),
  fc
    .tuple(fc.boolean(), fc.option(keyArb, { nil: undefined }), fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }))
    .map(([reverse, gte, limit]) => new RangeCommand(reverse, gte, limit)),
  fc.constant(new CheckpointCommand()),
  fc
    .tuple(
      fc.array(fc.record({ size: sizeArb, count: fc.integer({ min: 1, max: 4 }) }), { minLength: 1, maxLength: 5 }),
      fc.integer({ min: 0, max: 40 }),
      fc.integer({ min: 1, max: 0x7fffffff }),
      fc.boolean(),
    )
    .map(([batches, ops, seed, torn]) => new CrashCommand(batches, ops, seed, torn)),
];
if (modelConfig.bulkKeysMax > 0) {
  arbs.push(
    fc
      .array(fc.record({ key: keyArb, size: fc.option(fc.integer({ min: 1, max: 120 }), { nil: undefined, freq: 5 }), tag: tagArb }), { minLength: 20, maxLength: modelConfig.bulkKeysMax })
      .map((operations) => new BatchCommand(operations)),
  );
}
return arbs;
}

describe('BlockStore against a model (fast-check, simulated device)', function () {
  this.timeout(300_000);

  for (const modelConfig of CONFIGS) {
  it(`keeps every acknowledged write and never shows part of a batch across crashes, ${modelConfig.name} (seed ${SEED}, ${modelConfig.runs} runs)`, async () => {
    config = modelConfig;
    const coverage = { height: 0, pageMisses: 0 };
    await fc.assert(
      fc.asyncProperty(fc.commands(commandArbsFor(modelConfig), { maxCommands: 40 }), async (commands) => {
        const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
        const real: Real = { device, store: await openStore(device, true) };
        try {
          await fc.asyncModelRun(() => ({ model: { entries: new Map(), crashes: 0 }, real }), commands);
          const stats = real.store.stats();
          coverage.height = Math.max(coverage.height, stats.treeHeight);
          coverage.pageMisses += stats.pageCacheMisses;
          await checkStoreImage(real.store, real.device);
        } finally {
          await real.store.close().catch(() => undefined);
        }
      }),
      { seed: SEED, numRuns: modelConfig.runs, verbose: 1 },
    );
    console.log(`      tree height up to ${coverage.height}, ${coverage.pageMisses} page cache misses`);
    // The large configuration is there to exercise a tree the cache cannot hold.
    if (modelConfig.bulkKeysMax > 0) assert.ok(coverage.height >= 2 && coverage.pageMisses > 0, `the runs built no tree the cache cannot hold: ${JSON.stringify(coverage)}`);
  });
  }
});
