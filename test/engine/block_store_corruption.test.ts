// Damage to a real store file, made while the store is closed: a flipped
// byte in an extent value's data is ERR_STORE_CORRUPT naming 'data' and the
// value's block when the value is read (and never served as data); a damaged
// superblock copy is survived by using the other copy and rewriting the
// damaged one; damage to both copies is ERR_STORE_CORRUPT naming the
// superblock.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';

import { BlockStore } from '../../engine/block_store.js';
import { ByteWriter } from '../../format/byte_writer.js';
import { beginCommitPayload, finishCommitPayload } from '../../format/commit.js';
import { FREE_SET_HEADER_SIZE, SUPERBLOCK_SIZE } from '../../format/constants.js';
import { decodeFrameBlock, encodeFrame, frameBlockCount, frameBlockPayload } from '../../format/frame.js';
import { extentPutRecordBytes, writePutAt } from '../../format/records.js';
import { superblockSlotBlock } from '../../format/superblock.js';
import { fsckImage, memoryImage, type FsckReport } from '../../tools/fsck.js';
import { salvageImage } from '../../tools/salvage.js';
import { collect, flipByteInFile, makeStoreDir, openSmallStore, pattern, rejectsCorrupt, removeStoreDir } from './helpers.js';

const BLOCK_SIZE = 4096;
const VALUE_BLOCKS = 3;

function fsckFile(path: string): FsckReport {
  return fsckImage(memoryImage(readFileSync(path)));
}

/** A closed store holding 'victim' (a recognisable 3-block value) and a few others. */
async function makeStore(path: string): Promise<{ victim: Buffer }> {
  const victim = pattern(VALUE_BLOCKS * BLOCK_SIZE, 0x5eed);
  const store = await openSmallStore(path, { encoding: 'binary', blockSize: BLOCK_SIZE });
  await store.put('before', pattern(5000, 1));
  await store.put('victim', victim);
  await store.put('after', pattern(100, 2));
  await store.close();
  return { victim };
}

describe('fsck naming the key of a damaged value', () => {
  let dir: string | undefined;

  before(() => {
    dir = makeStoreDir();
  });

  after(() => {
    removeStoreDir(dir);
  });

  it('names a string key as its text (not the chars of its UTF-8 bytes) and a binary key in hex (found by a review)', async () => {
    for (const [key, named] of [
      ['é-key', '"é-key"'],
      ['\uFEFFbom-key', '"\uFEFFbom-key"'],
      [Buffer.from([0x80, 0x81]), '0x8081'],
    ] as const) {
      const path = `${dir}/store-${typeof key}-${key.length}`;
      const value = pattern(VALUE_BLOCKS * BLOCK_SIZE, 0x77);
      const store = await openSmallStore(path, { encoding: 'binary', blockSize: BLOCK_SIZE });
      await store.put(key, value);
      await store.close();
      flipByteInFile(path, readFileSync(path).indexOf(value) + 100);
      const report = fsckFile(path);
      assert.equal(report.errors.length, 1, report.errors.join('; '));
      assert.ok(report.errors[0].includes(`key ${named} `), report.errors[0]);
    }
  });
});

describe('metadata forged with valid checksums', () => {
  let dir: string | undefined;

  before(() => {
    dir = makeStoreDir();
  });

  after(() => {
    removeStoreDir(dir);
  });

  describe('a WAL commit whose intact record puts a value outside the data region', () => {
    it('is damage to open() and to fsck alike (fsck took it for a torn tail and said ok: found by a review)', async () => {
      const path = `${dir}/store`;
      await makeStore(path);
      const superblock = fsckFile(path).superblock!;
      // The next commit after the checkpoint, where replay starts: a put of a value in block 0 (a superblock's).
      const key = Buffer.from('w1');
      const writer = new ByteWriter();
      beginCommitPayload(writer, superblock.checkpointSeq);
      const { bytes, data, offset } = writer.claim(extentPutRecordBytes(key.length, 1));
      writePutAt(bytes, data, offset, key, true, { kind: 'extents', length: 100, crc: 0, extents: [{ startBlock: 0, blockCount: 1 }] });
      const payload = finishCommitPayload(writer, 1);
      const frame = new Uint8Array(frameBlockCount(payload.length, BLOCK_SIZE) * BLOCK_SIZE);
      encodeFrame('wal', superblock.checkpointSeq + 1, superblock.storeTag, payload, frame, BLOCK_SIZE);
      const image = readFileSync(path);
      image.set(frame, (superblock.walStartBlock + superblock.walReplayBlock) * BLOCK_SIZE);
      writeFileSync(path, image);
      const report = fsckFile(path);
      assert.ok(!report.ok, 'fsck says ok');
      assert.deepEqual(report.errors, [`wal: commit ${superblock.checkpointSeq + 1}: value of key "w1" references blocks 0+1 outside the data region`]);
      assert.equal(report.tornTail, undefined);
      await assert.rejects(BlockStore.open(path, { encoding: 'binary' }), (error: Error & { code?: string }) => error.code === 'ERR_STORE_CORRUPT' && /outside the data region/.test(error.message));
      // Salvage copies out what the checkpoint holds and says why the log stops there (it said: a crash before an fdatasync).
      const salvaged = salvageImage(memoryImage(readFileSync(path)));
      assert.match(salvaged.report.walProblem ?? '', /commit \d+ puts the value of "w1" outside the data region \(damage\)/);
      assert.ok(salvaged.entries.has('victim') && !salvaged.entries.has('w1'));
    });
  });

  describe('a checksum-valid free set that has a live value as free', () => {
    /** Rewrites the store's free set (checksums sealed again) with `used` for each block `blocks` names. */
    function forgeFreeSet(path: string, blocks: readonly number[], used: boolean): void {
      const superblock = fsckFile(path).superblock!;
      const image = readFileSync(path);
      const frameBlocks = superblock.freeSetExtents.flatMap((extent) => Array.from({ length: extent.blockCount }, (_, index) => extent.startBlock + index));
      const payload = Buffer.concat(
        frameBlocks.map((block) => {
          const bytes = image.subarray(block * BLOCK_SIZE, (block + 1) * BLOCK_SIZE);
          return frameBlockPayload(bytes, decodeFrameBlock('free set', bytes, block));
        }),
      );
      for (const block of blocks) {
        const bit = block - superblock.dataStartBlock;
        if (used) payload[FREE_SET_HEADER_SIZE + (bit >> 3)] |= 1 << (bit & 7);
        else payload[FREE_SET_HEADER_SIZE + (bit >> 3)] &= ~(1 << (bit & 7));
      }
      const frame = new Uint8Array(frameBlocks.length * BLOCK_SIZE);
      encodeFrame('free set', superblock.checkpointSeq, superblock.storeTag, payload, frame, BLOCK_SIZE);
      frameBlocks.forEach((block, index) => image.set(frame.subarray(index * BLOCK_SIZE, (index + 1) * BLOCK_SIZE), block * BLOCK_SIZE));
      writeFileSync(path, image);
    }

    it('is found by verifyIntegrity(), which then stops the store from writing: no write may take the blocks (a put overwrote the value: found by a review)', async () => {
      const path = `${dir}/free-set`;
      const { victim } = await makeStore(path);
      const victimExtents = fsckFile(path).references.filter((reference) => reference.owner === 'key "victim"');
      assert.ok(victimExtents.length > 0);
      forgeFreeSet(path, victimExtents.flatMap((extent) => Array.from({ length: extent.blockCount }, (_, index) => extent.startBlock + index)), false);
      const store = await BlockStore.open(path, { encoding: 'binary' });
      try {
        await assert.rejects(store.verifyIntegrity(), (error: Error & { code?: string }) => error.code === 'ERR_STORE_CORRUPT' && /referenced by key "victim" and also free/.test(error.message));
        await assert.rejects(store.put('newcomer', pattern(VALUE_BLOCKS * BLOCK_SIZE, 7)), (error: Error & { code?: string; cause?: { code?: string } }) => error.code === 'ERR_STORE_FAILED' && error.cause?.code === 'ERR_STORE_CORRUPT');
        assert.ok(((await store.get('victim')) as Buffer).equals(victim), 'the value is still there');
      } finally {
        await store.close();
      }
    });

    it('reports blocks in use that nothing references (a leak) without stopping writes: it loses space, it endangers nothing (found by a review)', async () => {
      const path = `${dir}/leak`;
      await makeStore(path);
      const superblock = fsckFile(path).superblock!;
      // The last blocks of the data region: free in a small store.
      forgeFreeSet(path, [superblock.blockCount - 1, superblock.blockCount - 2], true);
      const store = await BlockStore.open(path, { encoding: 'binary' });
      try {
        await assert.rejects(store.verifyIntegrity(), (error: Error & { code?: string }) => error.code === 'ERR_STORE_CORRUPT' && /2 blocks leaked/.test(error.message));
        await store.put('after', pattern(100, 3));
        assert.ok(((await store.get('after')) as Buffer).equals(pattern(100, 3)));
      } finally {
        await store.close();
      }
    });
  });
});

describe('BlockStore with a damaged extent value', () => {
  let dir: string | undefined;
  const path = (): string => `${dir}/store`;
  let victimBlock = -1;

  before(async () => {
    dir = makeStoreDir();
    const { victim } = await makeStore(path());
    const offset = readFileSync(path()).indexOf(victim);
    assert.ok(offset > 0 && offset % BLOCK_SIZE === 0, `the value's data should start a block, found at ${offset}`);
    victimBlock = offset / BLOCK_SIZE;
    assert.deepEqual(fsckFile(path()).errors, [], 'fsck finds the store intact before the damage');
    flipByteInFile(path(), offset + BLOCK_SIZE + 100); // in the value's second block
  });

  after(() => {
    removeStoreDir(dir);
  });

  it('opens (values are checked when read) and fsck reports the damaged value', async () => {
    const report = fsckFile(path());
    assert.equal(report.errors.length, 1, report.errors.join('; '));
    assert.match(report.errors[0], /victim/);
    const store = await BlockStore.open(path(), { encoding: 'binary' });
    await store.close();
  });

  it('rejects get() with ERR_STORE_CORRUPT naming the data and the value block', async () => {
    const store = await BlockStore.open(path(), { encoding: 'binary' });
    try {
      const error = await rejectsCorrupt(() => store.get('victim'), 'data');
      assert.ok(
        error.blockIndex !== undefined && error.blockIndex >= victimBlock && error.blockIndex < victimBlock + VALUE_BLOCKS,
        `blockIndex ${error.blockIndex} should be within the value's blocks ${victimBlock}..${victimBlock + VALUE_BLOCKS - 1}`,
      );
      assert.match(error.message, /checksum/);
      // The undamaged values are unaffected.
      assert.ok(((await store.get('before')) as Buffer).equals(pattern(5000, 1)));
      assert.ok(((await store.get('after')) as Buffer).equals(pattern(100, 2)));
    } finally {
      await store.close();
    }
  });

  it('rejects the damaged value in range(), createReadStream() and verifyIntegrity() too', async () => {
    const store = await BlockStore.open(path(), { encoding: 'binary' });
    try {
      await rejectsCorrupt(() => collect(store.range()), 'data');
      await rejectsCorrupt(() => collect(store.createReadStream('victim')), 'data');
      await rejectsCorrupt(() => store.verifyIntegrity(), 'data');
      assert.deepEqual(
        (await collect(store.range({ values: false }))).map(([key]) => key),
        ['after', 'before', 'victim'],
        'keys alone are still listed',
      );
    } finally {
      await store.close();
    }
  });
});

describe('BlockStore with a damaged superblock copy', () => {
  let dir: string | undefined;

  beforeEach(() => {
    dir = makeStoreDir();
  });

  afterEach(() => {
    removeStoreDir(dir);
  });

  for (const slot of [0, 1]) {
    it(`opens with the other copy when slot ${slot} is damaged, keeps every value, and rewrites the slot`, async () => {
      const path = `${dir}/store`;
      const { victim } = await makeStore(path);
      flipByteInFile(path, slot * BLOCK_SIZE + 100);
      const damaged = fsckFile(path);
      assert.ok(
        damaged.warnings.some((warning) => warning.startsWith(`superblock slot ${slot}`)),
        `fsck should warn about slot ${slot}: ${damaged.warnings.join('; ')}`,
      );

      const store = await BlockStore.open(path, { encoding: 'binary' });
      try {
        assert.ok(((await store.get('victim')) as Buffer).equals(victim));
        assert.ok(((await store.get('before')) as Buffer).equals(pattern(5000, 1)));
        assert.ok(((await store.get('after')) as Buffer).equals(pattern(100, 2)));
        const repaired = fsckFile(path);
        assert.deepEqual(repaired.warnings, [], 'both slots decode once the store is open');
        assert.deepEqual(repaired.errors, []);
        await store.put('later', pattern(10, 3));
      } finally {
        await store.close();
      }
      const reopened = await BlockStore.open(path, { encoding: 'binary' });
      try {
        assert.ok(((await reopened.get('later')) as Buffer).equals(pattern(10, 3)));
        assert.ok(((await reopened.get('victim')) as Buffer).equals(victim));
      } finally {
        await reopened.close();
      }
    });
  }

  it('after many checkpoints, refuses a damaged newest copy or recovers every value — never older data', async () => {
    const path = `${dir}/store`;
    const store = await openSmallStore(path, { encoding: 'binary', walSizeBytes: 64 << 10 });
    for (let i = 0; i < 200; i++) await store.put(`k${i % 20}`, pattern(i % 2 === 0 ? 5000 : 50, i));
    await store.close();
    const before = fsckFile(path);
    assert.deepEqual(before.errors, []);
    const newestSlot = before.superblock!.generation % 2;
    flipByteInFile(path, newestSlot * BLOCK_SIZE + 100);
    let reopened: BlockStore | undefined;
    try {
      reopened = await BlockStore.open(path, { encoding: 'binary' });
    } catch (error) {
      assert.equal((error as { code?: string }).code, 'ERR_STORE_CORRUPT', String(error));
      return;
    }
    try {
      for (let i = 180; i < 200; i++) {
        assert.ok(((await reopened.get(`k${i % 20}`)) as Buffer).equals(pattern(i % 2 === 0 ? 5000 : 50, i)), `k${i % 20} is not its newest value`);
      }
    } finally {
      await reopened.close();
    }
  });

  it('opens from the backup pair when both head copies are damaged, and rewrites them', async () => {
    const path = `${dir}/store`;
    const { victim } = await makeStore(path);
    flipByteInFile(path, 100);
    flipByteInFile(path, BLOCK_SIZE + SUPERBLOCK_SIZE - 10);
    const store = await BlockStore.open(path, { encoding: 'binary' });
    try {
      assert.ok(((await store.get('victim')) as Buffer).equals(victim));
    } finally {
      await store.close();
    }
    assert.deepEqual(fsckFile(path).warnings, [], 'every copy decodes after the repair');
  });

  it('refuses to open with ERR_STORE_CORRUPT naming the superblock when all four copies are damaged', async () => {
    const path = `${dir}/store`;
    await makeStore(path);
    const layout = fsckFile(path).superblock!;
    for (const slot of [0, 1, 2, 3]) flipByteInFile(path, superblockSlotBlock(slot, layout.walStartBlock, layout.walBlockCount) * BLOCK_SIZE + 100);
    const error = await rejectsCorrupt(() => BlockStore.open(path), 'superblock');
    assert.match(error.message, /slot 0.*slot 1.*no valid backup copy/);
    assert.deepEqual(fsckFile(path).errors, ['no valid superblock']);
  });
});
