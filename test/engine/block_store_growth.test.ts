// A store on a regular file grows as it fills (engine/store_growth.ts): from
// a small first size, up to maxSizeBytes or what the file system holds; a
// store that cannot grow refuses puts with ERR_STORE_FULL saying why, and
// keeps working. Growth is crash-safe: the file is extended and flushed
// before a superblock names the larger size, and no block past the durable
// size is ever written — checked here by crashing a growing store on the
// simulated device after every one of its operations.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, statSync, truncateSync } from 'node:fs';
import { once } from 'node:events';

import { BlockStore } from '../../engine/block_store.js';
import { DEFAULT_NEW_FILE_WAL_SIZE_BYTES, DEFAULT_STORE_SIZE_BYTES } from '../../engine/store_options.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { GROWTH_SHARE } from '../../engine/store_growth.js';
import { isRoot, makeStoreDir, pattern, rejectsWithCode, removeStoreDir, seededRandom, skipBecause } from './helpers.js';

const BLOCK_SIZE = 4096;
/** Values of 16 blocks: extent values, so each put takes data blocks. */
const VALUE_BYTES = 16 * BLOCK_SIZE;
/** Crash points of the power-failure test, spread over its operations (~0.15 s each). */
const CRASH_POINTS = 50;
const PUTS = 80;
const CONCURRENT_PUTS = 4;

/** Puts `value-0`, `value-1`, … of VALUE_BYTES until one is refused (or `countMax`); how many were stored, and the refusal. */
async function putUntilRefused(store: BlockStore, countMax: number): Promise<{ stored: number; refusal: unknown }> {
  for (let stored = 0; stored < countMax; stored++) {
    try {
      await store.put(`value-${stored}`, pattern(VALUE_BYTES, stored));
    } catch (refusal) {
      return { stored, refusal };
    }
  }
  return { stored: countMax, refusal: undefined };
}

describe('BlockStore growth', function () {
  this.timeout(120_000);
  let dir = '';
  beforeEach(() => {
    dir = makeStoreDir();
  });
  afterEach(() => {
    removeStoreDir(dir);
  });

  it('makes a small file without sizeBytes and grows it as values arrive, keeping every value across a reopen', async () => {
    const path = `${dir}/store`;
    const store = await BlockStore.open(path, { create: true, encoding: 'binary' });
    const puts = 600; // 600 × 64 KiB = 37.5 MiB, more than twice the first size
    try {
      assert.equal(statSync(path).size, DEFAULT_STORE_SIZE_BYTES);
      assert.equal(store.stats().blocksTotal, DEFAULT_STORE_SIZE_BYTES / BLOCK_SIZE);
      for (let i = 0; i < puts; i++) await store.put(`value-${i}`, pattern(VALUE_BYTES, i));
      const blocksTotal = store.stats().blocksTotal;
      assert.ok(blocksTotal * BLOCK_SIZE > puts * VALUE_BYTES, `${blocksTotal} blocks hold ${puts} values of ${VALUE_BYTES} bytes`);
      // Growth adds a share of the size, not a block at a time, and not much more than was needed.
      assert.ok(store.stats().growths >= 2 && store.stats().growths < 20, `${store.stats().growths} growths`);
      assert.ok(blocksTotal * BLOCK_SIZE < (1 + GROWTH_SHARE) * 2 * (puts * VALUE_BYTES + DEFAULT_NEW_FILE_WAL_SIZE_BYTES), `grew to ${blocksTotal} blocks`);
      assert.equal(statSync(path).size, blocksTotal * BLOCK_SIZE);
      await store.verifyIntegrity();
    } finally {
      await store.close();
    }
    const reopened = await BlockStore.open(path);
    try {
      assert.equal(reopened.stats().keys, puts);
      for (let i = 0; i < puts; i += 37) assert.deepEqual(await reopened.get(`value-${i}`), pattern(VALUE_BYTES, i));
      assert.equal((await reopened.verifyIntegrity()).keys, puts);
    } finally {
      await reopened.close();
    }
  });

  it('takes one value larger than the whole store, through put and through a stream', async () => {
    const path = `${dir}/store`;
    const store = await BlockStore.open(path, { create: true, sizeBytes: 4 << 20, encoding: 'binary' });
    try {
      const big = pattern(12 << 20, 1);
      await store.put('big', big);
      const stream = store.createWriteStream('streamed');
      const streamed = pattern(20 << 20, 2);
      for (let offset = 0; offset < streamed.length; offset += 1 << 20) {
        if (!stream.write(streamed.subarray(offset, offset + (1 << 20)))) await once(stream, 'drain');
      }
      stream.end();
      await once(stream, 'finish');
      assert.deepEqual(await store.get('big'), big);
      assert.deepEqual(await store.get('streamed'), streamed);
      await store.verifyIntegrity();
    } finally {
      await store.close();
    }
  });

  it('stops at maxSizeBytes with ERR_STORE_FULL naming the limit, still takes deletes, and grows again when reopened with a higher cap', async () => {
    const path = `${dir}/store`;
    const capBytes = 12 << 20;
    const store = await BlockStore.open(path, { create: true, sizeBytes: 4 << 20, maxSizeBytes: capBytes, encoding: 'binary' });
    let stored = 0;
    try {
      let refusal: unknown;
      ({ stored, refusal } = await putUntilRefused(store, 400));
      const error = await rejectsWithCode(() => Promise.reject(refusal), 'ERR_STORE_FULL');
      assert.match(error.message, new RegExp(`size limit of ${capBytes} bytes \\(maxSizeBytes\\)`));
      assert.equal(statSync(path).size, capBytes);
      // Most of the cap holds values: the store used its room before refusing.
      assert.ok(stored * VALUE_BYTES > capBytes / 2, `only ${stored} values fit a ${capBytes}-byte cap`);
      assert.equal(await store.delete('value-0'), true);
      await store.verifyIntegrity();
    } finally {
      await store.close();
    }
    const reopened = await BlockStore.open(path, { maxSizeBytes: 32 << 20 });
    try {
      for (let i = stored; i < stored + 100; i++) await reopened.put(`value-${i}`, pattern(VALUE_BYTES, i));
      assert.ok(statSync(path).size > capBytes);
      assert.equal((await reopened.verifyIntegrity()).keys, stored - 1 + 100);
    } finally {
      await reopened.close();
    }
  });

  it('does not grow the file for a value that cannot fit under maxSizeBytes: the put is refused naming the limit, and the file keeps its size (found by a review: it grew to the cap for good)', async () => {
    const path = `${dir}/store-too-large`;
    const capBytes = 16 << 20;
    const store = await BlockStore.open(path, { create: true, sizeBytes: 2 << 20, maxSizeBytes: capBytes, encoding: 'binary' });
    try {
      const sizeBefore = statSync(path).size;
      const error = await rejectsWithCode(() => store.put('too-large', pattern(capBytes + (1 << 20), 1)), 'ERR_STORE_FULL');
      assert.match(error.message, new RegExp(`more than growing to the store's size limit of ${capBytes} bytes \\(maxSizeBytes\\) would add`));
      assert.equal(statSync(path).size, sizeBefore);
      // A value that fits still makes it grow.
      await store.put('fits', pattern(4 << 20, 2));
      assert.ok(statSync(path).size > sizeBefore);
      await store.verifyIntegrity();
    } finally {
      await store.close();
    }
  });

  it('keeps the size of a store reopened with a maxSizeBytes below it: its free space takes puts, then ERR_STORE_FULL says it is past its limit (it said "at its size limit" of a smaller size; found by a review)', async () => {
    const path = `${dir}/store-recapped`;
    const store = await BlockStore.open(path, { create: true, sizeBytes: 4 << 20, encoding: 'binary' });
    try {
      for (let i = 0; i < 400; i++) await store.put(`value-${i}`, pattern(VALUE_BYTES, i));
      for (let i = 0; i < 400; i += 2) await store.delete(`value-${i}`);
    } finally {
      await store.close();
    }
    const grownBytes = statSync(path).size;
    const capBytes = 4 << 20;
    assert.ok(grownBytes > 4 * capBytes, `grew to ${grownBytes} bytes`);
    const recapped = await BlockStore.open(path, { maxSizeBytes: capBytes, encoding: 'binary' });
    try {
      const { stored, refusal } = await putUntilRefused(recapped, 1_000);
      // The deletes' room is used before the refusal: the store is not treated as its cap's size.
      assert.ok(stored > 100, `${stored} puts into the room 200 deletes left`);
      const error = await rejectsWithCode(() => Promise.reject(refusal), 'ERR_STORE_FULL');
      assert.match(error.message, new RegExp(`the store \\(${grownBytes} bytes\\) is past its size limit of ${capBytes} bytes \\(maxSizeBytes\\) and does not grow`));
      assert.equal(statSync(path).size, grownBytes, 'the file neither grew nor shrank');
      await recapped.verifyIntegrity();
    } finally {
      await recapped.close();
    }
  });

  it('refuses a maxSizeBytes below sizeBytes before touching the file', async () => {
    const path = `${dir}/store`;
    await assert.rejects(BlockStore.open(path, { create: true, sizeBytes: 8 << 20, maxSizeBytes: 4 << 20 }), { name: 'RangeError', code: 'ERR_INVALID_ARG' });
    assert.throws(() => statSync(path), { code: 'ENOENT' });
  });

  it('opens a store whose file grew but whose superblock was not written (a crash between the two) at its recorded size', async () => {
    const path = `${dir}/store`;
    const store = await BlockStore.open(path, { create: true, sizeBytes: 4 << 20, encoding: 'binary' });
    await store.put('a', pattern(VALUE_BYTES, 1));
    await store.close();
    truncateSync(path, 9 << 20);
    const reopened = await BlockStore.open(path);
    try {
      assert.equal(reopened.stats().blocksTotal, (4 << 20) / BLOCK_SIZE);
      assert.deepEqual(await reopened.get('a'), pattern(VALUE_BYTES, 1));
      for (let i = 0; i < 120; i++) await reopened.put(`more-${i}`, pattern(VALUE_BYTES, i));
      await reopened.verifyIntegrity();
    } finally {
      await reopened.close();
    }
  });

  it('keeps every acknowledged write when power fails at any operation of a growing store (simulated device)', async () => {
    const firstBytes = 1 << 20;
    const deviceBytesMax = 8 << 20;
    /** One run: puts until the device crashes after `crashAfterOps` operations; returns what was acknowledged. */
    async function run(crashAfterOps: number): Promise<{ device: SimulatedDevice; created: boolean; acknowledged: Set<number>; grew: boolean }> {
      const device = new SimulatedDevice({ sizeBytes: firstBytes, sizeBytesMax: deviceBytesMax, crashAfterOps });
      let created = false;
      const acknowledged = new Set<number>();
      let grew = false;
      try {
        const store = await BlockStore.open('growing', { device, create: true, encoding: 'binary' });
        created = true;
        // Puts CONCURRENT_PUTS at a time: some allocate while a growth is under way.
        for (let first = 0; first < PUTS; first += CONCURRENT_PUTS) {
          const group: Promise<void>[] = [];
          for (let i = first; i < Math.min(PUTS, first + CONCURRENT_PUTS); i++) group.push(store.put(`value-${i}`, pattern(VALUE_BYTES / 4, i)).then(() => void acknowledged.add(i)));
          await Promise.allSettled(group);
          grew ||= store.stats().growths > 0;
        }
        await store.close();
      } catch {
        // The crash: the store fails; what it acknowledged must survive.
      }
      return { device, created, acknowledged, grew };
    }
    // How many operations the whole workload takes, and that it grows.
    const whole = await run(Infinity);
    assert.equal(whole.acknowledged.size, PUTS);
    assert.ok(whole.grew, 'the workload never grew the device');
    const totalOps = whole.device.opCount;
    let checked = 0;
    /** Crash points whose survivor had grown durably, and those that had not. */
    const survivorSizes = { grown: 0, first: 0 };
    for (let crashAfter = 1; crashAfter < totalOps; crashAfter += Math.max(1, Math.floor(totalOps / CRASH_POINTS))) {
      const { device, created, acknowledged } = await run(crashAfter);
      // A crash while the store was being made may leave none (nothing was acknowledged).
      if (!created) continue;
      const survivor = device.crash({ random: seededRandom(crashAfter) });
      survivorSizes[survivor.sizeBytes > firstBytes ? 'grown' : 'first']++;
      const store = await BlockStore.open('recovered', { device: survivor, encoding: 'binary' });
      try {
        for (const i of acknowledged) {
          assert.deepEqual(await store.get(`value-${i}`), pattern(VALUE_BYTES / 4, i), `crash after ${crashAfter} operations: value-${i} acknowledged but lost`);
        }
        await store.verifyIntegrity();
        // And it grows on from there.
        for (let i = 0; i < 40; i++) await store.put(`after-${i}`, pattern(VALUE_BYTES / 4, i));
      } finally {
        await store.close();
      }
      checked++;
    }
    assert.ok(checked > CRASH_POINTS / 2, `${checked} crash points`);
    assert.ok(survivorSizes.grown > 0 && survivorSizes.first > 0, `crash points before and after a durable growth: ${JSON.stringify(survivorSizes)}`);
  });

  it('refuses puts with ERR_STORE_FULL naming the file system when it is full, and keeps working (tmpfs)', async function () {
    if (!isRoot()) skipBecause(this, 'mounting a small tmpfs needs root');
    const mountPoint = `${dir}/small`;
    mkdirSync(mountPoint);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mountPoint]);
    } catch (error) {
      skipBecause(this, `cannot mount a tmpfs: ${(error as Error).message}`);
    }
    try {
      const store = await BlockStore.open(`${mountPoint}/store`, { create: true, sizeBytes: 4 << 20, encoding: 'binary' }).catch((error: { code?: string }) => {
        if (error.code === 'ERR_STORE_UNSUPPORTED') skipBecause(this, 'this tmpfs has no O_DIRECT');
        throw error;
      });
      let stored = 0;
      try {
        let refusal: unknown;
        ({ stored, refusal } = await putUntilRefused(store, 1000));
        const error = await rejectsWithCode(() => Promise.reject(refusal), 'ERR_STORE_FULL');
        assert.match(error.message, /the file could not grow/);
        assert.ok(stored * VALUE_BYTES > 12 << 20, `only ${stored} values fit a 24 MiB file system`);
        // Not failed: reads, deletes and smaller puts go on.
        assert.deepEqual(await store.get('value-1'), pattern(VALUE_BYTES, 1));
        for (let i = 0; i < 20; i++) assert.equal(await store.delete(`value-${i}`), true);
        await store.put('small', Buffer.from('fits'));
        await store.verifyIntegrity();
      } finally {
        await store.close();
      }
      const reopened = await BlockStore.open(`${mountPoint}/store`);
      try {
        assert.equal((await reopened.verifyIntegrity()).keys, stored - 20 + 1);
      } finally {
        await reopened.close();
      }
    } finally {
      execFileSync('umount', [mountPoint]);
    }
  });
});

