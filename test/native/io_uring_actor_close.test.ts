// Closing: a ring drains what is in flight before it lets go of its files and
// its actor; a closed ring or file refuses new work with a coded error;
// closing twice is harmless; and a ring that is open but idle never keeps the
// process alive.
import assert from 'node:assert/strict';
import { fstatSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { allocAligned, IoUringActor, RingError, type RingFile } from '../../index.js';
import { constants } from '../../native/addon.js';
import {
  BACKENDS,
  CHILD_DIR_SOURCE,
  CHILD_TIMEOUT_MS,
  describeChild,
  fillPattern,
  makeTempDir,
  PACKAGE_ENTRY_URL,
  pattern,
  rejectsWith,
  removeTempDir,
  runNodeModule,
  throwsWith,
} from './helpers.js';

const BLOCK_SIZE = 4096;

/** Every operation of a RingFile, each started on `file`. */
function everyFileOperation(file: RingFile): [string, () => Promise<unknown>][] {
  const block = allocAligned(BLOCK_SIZE);
  return [
    ['read', () => file.read(block, 0)],
    ['write', () => file.write(block, 0)],
    ['readv', () => file.readv([block], 0)],
    ['writev', () => file.writev([block], 0)],
    ['writeAndSync', () => file.writeAndSync(block, 0)],
    ['sync', () => file.sync()],
    ['datasync', () => file.datasync()],
    ['trim', () => file.trim(0, BLOCK_SIZE)],
    ['readBlock', () => file.readBlock(0)],
    ['writeBlock', () => file.writeBlock(0, block)],
    ['stat', () => file.stat()],
  ];
}

describe('IoUringActor#close()', () => {
  let dir: string | undefined;

  before(() => {
    dir = makeTempDir();
  });

  after(() => {
    removeTempDir(dir);
  });

  for (const backend of BACKENDS) {
    it(`lets operations in flight finish and resolve, then closes (${backend} backend)`, async () => {
      const ring = IoUringActor.start({ backend });
      const path = `${dir}/drain-${backend}`;
      const file = await ring.open(path, { create: true, direct: true });
      const blocks = Array.from({ length: 64 }, (_, index) => fillPattern(allocAligned(BLOCK_SIZE), index));
      const writes = blocks.map((block, index) => file.write(block, index * BLOCK_SIZE));
      const closing = ring.close();
      assert.equal(ring.closed, true);
      assert.deepEqual(await Promise.all(writes), blocks.map(() => BLOCK_SIZE));
      await closing;
      assert.ok(readFileSync(path).equals(Buffer.concat(blocks)));
    });
  }

  it('drains operations still waiting in the JS FIFO as well', async () => {
    const ring = IoUringActor.start();
    const path = `${dir}/drain-fifo`;
    const file = await ring.open(path, { create: true });
    const recordCount = constants.CLIENT_SLOT_COUNT + 1000;
    const data = pattern(recordCount * 16, 1);
    const writes: Promise<number>[] = [];
    for (let i = 0; i < recordCount; i++) writes.push(file.write(data.subarray(i * 16, (i + 1) * 16), i * 16));
    assert.ok(ring.stats().waitingInJs > 0);
    const closing = ring.close();
    const results = await Promise.all(writes);
    assert.ok(results.every((length) => length === 16));
    await closing;
    assert.ok(readFileSync(path).equals(data));
  });

  it('rejects operations started while it drains with ERR_RING_CLOSED', async () => {
    const ring = IoUringActor.start();
    const file = await ring.open(`${dir}/while-draining`, { create: true });
    const inFlight = file.write(Buffer.alloc(BLOCK_SIZE, 1), 0);
    const closing = ring.close();
    // All started at once, before the drain can finish and close the file.
    await Promise.all(everyFileOperation(file).map(([, start]) => rejectsWith(start, RingError, 'ERR_RING_CLOSED')));
    assert.equal(await inFlight, BLOCK_SIZE);
    await closing;
  });

  it('rejects open() afterwards with ERR_RING_CLOSED, and stats() throws it', async () => {
    const ring = IoUringActor.start();
    await ring.close();
    await rejectsWith(() => ring.open(`${dir}/after-close`, { create: true }), RingError, 'ERR_RING_CLOSED');
    throwsWith(() => ring.stats(), RingError, 'ERR_RING_CLOSED');
  });

  it('rejects an open() that was in progress when it closed with ERR_RING_CLOSED', async () => {
    const ring = IoUringActor.start();
    const opening = ring.open(`${dir}/opening`, { create: true });
    const rejected = rejectsWith(() => opening, RingError, 'ERR_RING_CLOSED');
    await ring.close();
    await rejected;
  });

  it('closes the files opened through it', async () => {
    const ring = IoUringActor.start();
    const first = await ring.open(`${dir}/owned-1`, { create: true });
    const second = await ring.open(`${dir}/owned-2`, { create: true, direct: true });
    await first.write(Buffer.from('data'), 0);
    await ring.close();
    for (const file of [first, second]) {
      assert.equal(file.closed, true, `${file.path} is closed`);
      assert.throws(() => fstatSync(file.fd), { code: 'EBADF' }, `the descriptor of ${file.path} was released`);
      for (const [name, start] of everyFileOperation(file)) {
        const error = await rejectsWith(start, RingError, 'ERR_FILE_CLOSED');
        assert.match(error.message, /closed/, name);
      }
      await file.close(); // closing again, after the ring did, is harmless
    }
  });

  it('is harmless when called twice, before and after it resolved', async () => {
    const ring = IoUringActor.start();
    const file = await ring.open(`${dir}/twice`, { create: true });
    void file.write(Buffer.from('x'), 0);
    const first = ring.close();
    const second = ring.close();
    await Promise.all([first, second]);
    await ring.close();
    assert.equal(ring.closed, true);
  });

  it('closes a ring that never did any IO', async () => {
    const ring = IoUringActor.start();
    assert.equal(ring.closed, false);
    await ring.close();
    assert.equal(ring.closed, true);
  });

  for (const backend of BACKENDS) {
    it(`leaves an idle, unclosed ring unable to keep the process alive (${backend} backend)`, async () => {
      // The child starts a ring, opens a file, does one read, and returns
      // without closing anything. It must exit on its own, with code 0.
      const source = `
        const { IoUringActor } = await import(${JSON.stringify(PACKAGE_ENTRY_URL)});
        const ring = IoUringActor.start({ backend: ${JSON.stringify(backend)} });
        const file = await ring.open(${JSON.stringify(fileURLToPath(import.meta.url))}, { readOnly: true });
        const bytesRead = await file.read(Buffer.alloc(16), 0);
        console.log('read ' + bytesRead);
      `;
      const result = await runNodeModule(source, { timeoutMs: CHILD_TIMEOUT_MS });
      assert.equal(result.timedOut, false, `the child did not exit within ${CHILD_TIMEOUT_MS} ms: ${describeChild(result)}`);
      assert.equal(result.exitCode, 0, describeChild(result));
      assert.equal(result.stdout.trim(), 'read 16');
    });
  }

  it('lets a process exit with operations still in flight', async () => {
    const source = `
      const { IoUringActor } = await import(${JSON.stringify(PACKAGE_ENTRY_URL)});
      const dir = ${CHILD_DIR_SOURCE};
      const ring = IoUringActor.start();
      const file = await ring.open(dir + '/file', { create: true });
      for (let i = 0; i < 256; i++) void file.write(Buffer.alloc(4096, i), i * 4096);
      process.exit(0);
    `;
    const result = await runNodeModule(source);
    assert.equal(result.exitCode, 0, describeChild(result));
  });
});

describe('RingFile#close()', () => {
  let dir: string | undefined;
  let ring: IoUringActor | undefined;

  before(() => {
    dir = makeTempDir();
    ring = IoUringActor.start();
  });

  after(async () => {
    await ring?.close();
    removeTempDir(dir);
  });

  it('waits for operations in flight, which resolve', async () => {
    const path = `${dir}/in-flight`;
    const file = await ring!.open(path, { create: true });
    const data = pattern(64 * BLOCK_SIZE, 2);
    const writes = Array.from({ length: 64 }, (_, index) =>
      file.write(data.subarray(index * BLOCK_SIZE, (index + 1) * BLOCK_SIZE), index * BLOCK_SIZE),
    );
    await file.close();
    assert.equal(file.closed, true);
    assert.ok((await Promise.all(writes)).every((length) => length === BLOCK_SIZE));
    assert.ok(readFileSync(path).equals(data));
  });

  it('rejects every later operation with ERR_FILE_CLOSED', async () => {
    const file = await ring!.open(`${dir}/closed`, { create: true });
    await file.close();
    for (const [name, start] of everyFileOperation(file)) {
      const error = await rejectsWith(start, RingError, 'ERR_FILE_CLOSED');
      assert.match(error.message, /closed/, name);
    }
  });

  it('is harmless when called twice', async () => {
    const file = await ring!.open(`${dir}/twice`, { create: true });
    await Promise.all([file.close(), file.close()]);
    await file.close();
    assert.equal(file.closed, true);
  });

  it('leaves the ring and its other files usable', async () => {
    const closed = await ring!.open(`${dir}/first`, { create: true });
    const open = await ring!.open(`${dir}/second`, { create: true });
    await closed.close();
    assert.equal(await open.write(Buffer.from('still open'), 0), 10);
    assert.equal(ring!.closed, false);
    await open.close();
  });
});
