// Direct IO needs the buffer address, the file position and the length
// aligned. RingFile checks all three before anything reaches the kernel and
// rejects a misaligned operation with RangeError ERR_UNALIGNED_DIRECT_IO.
import assert from 'node:assert/strict';

import { allocAligned, IoUringActor, type RingFile } from '../../index.js';
import { fillPattern, makeTempDir, rejectsWith, removeTempDir } from './helpers.js';

const BLOCK_SIZE = 4096;

describe('RingFile direct IO alignment', () => {
  let dir: string | undefined;
  let ring: IoUringActor | undefined;
  let file: RingFile;

  before(async () => {
    dir = makeTempDir();
    ring = IoUringActor.start();
    file = await ring.open(`${dir}/direct`, { create: true, direct: true, sizeBytes: 16 * BLOCK_SIZE });
  });

  after(async () => {
    await ring?.close();
    removeTempDir(dir);
  });

  /** Asserts the rejection and that nothing reached the actor. */
  async function rejectsUnaligned(start: () => Promise<unknown>, mentions: RegExp): Promise<void> {
    const before = ring!.stats();
    const error = await rejectsWith(start, RangeError, 'ERR_UNALIGNED_DIRECT_IO');
    assert.match(error.message, mentions);
    const after = ring!.stats();
    assert.equal(after.submitted, before.submitted, 'an unaligned operation was submitted');
    assert.equal(after.completed, before.completed);
    assert.equal(after.waitingInJs, 0);
  }

  /** 4096 bytes starting one byte past an aligned address. */
  const unalignedAddress = (): Buffer => allocAligned(2 * BLOCK_SIZE).subarray(1, 1 + BLOCK_SIZE);
  /** An aligned address with a length that no sector size divides. */
  const unalignedLength = (): Buffer => allocAligned(2 * BLOCK_SIZE).subarray(0, 1000);
  const aligned = (): Buffer => allocAligned(BLOCK_SIZE);

  it('states the alignment it enforces, from the file system', async () => {
    const stat = await file.stat();
    assert.equal(file.memoryAlignment, stat.dioMemAlign || stat.logicalBlockSize);
    assert.equal(file.offsetAlignment, stat.dioOffsetAlign || stat.logicalBlockSize);
    for (const alignment of [file.memoryAlignment, file.offsetAlignment]) {
      assert.ok(alignment > 1 && (alignment & (alignment - 1)) === 0, `alignment ${alignment} is a power of two above 1`);
    }
  });

  describe('an unaligned buffer address', () => {
    it('is rejected by read()', () => rejectsUnaligned(() => file.read(unalignedAddress(), 0), /address/));
    it('is rejected by write()', () => rejectsUnaligned(() => file.write(unalignedAddress(), 0), /address/));
    it('is rejected by readv(), naming the buffer', () =>
      rejectsUnaligned(() => file.readv([aligned(), unalignedAddress()], 0), /buffers\[1\] address/));
    it('is rejected by writev(), naming the buffer', () =>
      rejectsUnaligned(() => file.writev([unalignedAddress(), aligned()], 0), /buffers\[0\] address/));
    it('is rejected by writeAndSync()', () => rejectsUnaligned(() => file.writeAndSync(unalignedAddress(), 0), /address/));
    it('is rejected by readBlock()', () => rejectsUnaligned(() => file.readBlock(0, unalignedAddress()), /address/));
    it('is rejected by writeBlock()', () => rejectsUnaligned(() => file.writeBlock(0, unalignedAddress()), /address/));
  });

  describe('an unaligned position', () => {
    for (const position of [1, 100, BLOCK_SIZE + 1]) {
      it(`position ${position} is rejected by read(), write(), readv(), writev() and writeAndSync()`, async () => {
        await rejectsUnaligned(() => file.read(aligned(), position), /position/);
        await rejectsUnaligned(() => file.write(aligned(), position), /position/);
        await rejectsUnaligned(() => file.readv([aligned()], position), /position/);
        await rejectsUnaligned(() => file.writev([aligned()], position), /position/);
        await rejectsUnaligned(() => file.writeAndSync([aligned()], position), /position/);
      });
    }
  });

  describe('an unaligned length', () => {
    it('is rejected by read()', () => rejectsUnaligned(() => file.read(unalignedLength(), 0), /length/));
    it('is rejected by write()', () => rejectsUnaligned(() => file.write(unalignedLength(), 0), /length/));
    it('is rejected by readv()', () => rejectsUnaligned(() => file.readv([aligned(), unalignedLength()], 0), /length/));
    it('is rejected by writev()', () => rejectsUnaligned(() => file.writev([unalignedLength()], 0), /length/));
    it('is rejected by writeAndSync()', () => rejectsUnaligned(() => file.writeAndSync([aligned(), unalignedLength()], 0), /length/));
  });

  it('accepts a buffer aligned to memoryAlignment but not to a page', async () => {
    // The smallest aligned address past a page boundary: only memoryAlignment
    // is required, not 4096.
    const page = allocAligned(2 * BLOCK_SIZE);
    const view = page.subarray(file.memoryAlignment, file.memoryAlignment + BLOCK_SIZE);
    fillPattern(view, 1);
    if (file.memoryAlignment < BLOCK_SIZE) {
      assert.equal(await file.write(view, BLOCK_SIZE), BLOCK_SIZE);
      const back = allocAligned(BLOCK_SIZE);
      assert.equal(await file.read(back, BLOCK_SIZE), BLOCK_SIZE);
      assert.ok(back.equals(view));
    } else {
      await rejectsUnaligned(() => file.write(view, BLOCK_SIZE), /address/);
    }
  });

  it('accepts an aligned operation after rejecting unaligned ones', async () => {
    const data = allocAligned(BLOCK_SIZE);
    fillPattern(data, 2);
    // Commands that reached the kernel: the actor's, and a lone read through this thread's own ring.
    const submitted = (): number => ring!.stats().submitted + ring!.stats().directReads;
    const before = submitted();
    assert.equal(await file.write(data, 2 * BLOCK_SIZE), BLOCK_SIZE);
    assert.ok((await file.readBlock(2)).equals(data));
    assert.equal(submitted(), before + 2);
  });

  it('does not apply to a buffered file of the same file system', async () => {
    const buffered = await ring!.open(`${dir}/buffered`, { create: true });
    assert.equal(await buffered.write(unalignedAddress().subarray(0, 1000), 7), 1000);
    await buffered.close();
  });
});
