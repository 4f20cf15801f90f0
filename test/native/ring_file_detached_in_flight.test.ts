// Memory under IO that the native layer does not own (a Buffer.alloc, a
// TypedArray: anything but allocAligned) goes through a bounce copy of its
// own: JS may detach (transfer) such an ArrayBuffer while the IO is in
// flight, and the new owner, once collected, frees the memory — the kernel
// then wrote into freed memory, another Buffer's or malloc's (found by a
// review: file bytes in fresh Buffers, or "free(): invalid next size").
// A read's bytes reach its buffer at delivery, wherever the view lies in
// its ArrayBuffer.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

import { IoUringActor, type RingFile } from '../../index.js';
import { BACKENDS, makeTempDir, PACKAGE_ENTRY_URL, pattern, removeTempDir } from './helpers.js';

describe('RingFile IO into memory JS may detach while it is in flight', function () {
  this.timeout(60_000);
  let dir: string | undefined;

  before(() => {
    dir = makeTempDir();
  });

  after(() => {
    removeTempDir(dir);
  });

  for (const backend of BACKENDS) {
    it(`${backend}: a read whose buffer is transferred away and collected writes into no other memory`, () => {
      // In a child: without the bounce the process may abort.
      const script = `
        const { IoUringActor } = await import(${JSON.stringify(PACKAGE_ENTRY_URL)});
        const SIZE = 64 * 1024;
        const ring = IoUringActor.start({ backend: ${JSON.stringify(backend)}, threadCount: 1, entries: 4, batchSize: 1 });
        const file = await ring.open(${JSON.stringify(`${dir}/detach-${backend}`)}, { create: true });
        await file.write(Buffer.alloc(SIZE, 0xab), 0);
        // Slow writes ahead of the read keep it in flight while its buffer goes away.
        const big = Buffer.alloc(64 << 20, 1);
        const slow = [];
        for (let i = 0; i < 4; i++) slow.push(file.write(big, (1 << 30) + i * (64 << 20)));
        const victim = Buffer.allocUnsafeSlow(SIZE).fill(0);
        const read = file.read(victim, 0);
        structuredClone(victim.buffer, { transfer: [victim.buffer] });
        globalThis.gc();
        globalThis.gc();
        const fresh = [];
        for (let i = 0; i < 64; i++) fresh.push(Buffer.allocUnsafeSlow(SIZE).fill(0));
        const bytesRead = await read;
        await Promise.all(slow);
        const written = fresh.filter((buffer) => buffer.indexOf(0xab) !== -1).length;
        await file.close();
        await ring.close();
        console.log(JSON.stringify({ bytesRead, written }));
      `;
      const output = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8' });
      assert.deepEqual(JSON.parse(output.trim().split('\n').pop()!), { bytesRead: 64 * 1024, written: 0 });
    });
  }

  it('lands a read in views at offsets of one ArrayBuffer, and a write handed to the native layer at once takes the bytes as they were then', async () => {
    const ring = IoUringActor.start();
    let file: RingFile | undefined;
    try {
      file = await ring.open(`${dir}/offsets`, { create: true });
      const data = pattern(3000, 5);
      const written = Buffer.from(data);
      const writing = file.write(written, 100);
      // Changed after the call: the file gets the bytes of the call.
      written.fill(0);
      await writing;
      const memory = new ArrayBuffer(8192);
      new Uint8Array(memory).fill(0xee);
      const first = new Uint8Array(memory, 1000, 1000);
      const second = new Uint8Array(memory, 5000, 2000);
      assert.equal(await file.readv([first, second], 100), 3000);
      const all = new Uint8Array(memory);
      assert.ok(Buffer.from(first).equals(data.subarray(0, 1000)));
      assert.ok(Buffer.from(second).equals(data.subarray(1000, 3000)));
      for (const [from, to] of [[0, 1000], [2000, 5000], [7000, 8192]]) assert.ok(all.subarray(from, to).every((byte) => byte === 0xee), `bytes ${from}-${to} untouched`);
    } finally {
      await file?.close();
      await ring.close();
    }
  });
  it('readBlock of a short file into a buffer detached during the read resolves, zeroing nothing (it threw an uncoded "Cannot perform Construct on a detached ArrayBuffer")', async () => {
    const ring = IoUringActor.start();
    let file: RingFile | undefined;
    try {
      const path = `${dir}/short`;
      execFileSync('truncate', ['-s', '100', path]);
      file = await ring.open(path, { readOnly: true });
      const target = new Uint8Array(file.blockSize);
      const reading = file.readBlock(0, target);
      structuredClone(target.buffer, { transfer: [target.buffer] });
      assert.equal(await reading, target);
      assert.equal(target.byteLength, 0);
      // The same read into a buffer left alone: 100 bytes of the file, zeros after.
      const kept = new Uint8Array(file.blockSize).fill(0xee);
      await file.readBlock(0, kept);
      assert.ok(kept.every((byte) => byte === 0));
    } finally {
      await file?.close();
      await ring.close();
    }
  });
  it('readBlock zeroes past end-of-file only within the block, however the view grew during the read', async () => {
    const ring = IoUringActor.start();
    let file: RingFile | undefined;
    try {
      const path = `${dir}/short-grown`;
      execFileSync('truncate', ['-s', '100', path]);
      file = await ring.open(path, { readOnly: true });
      const Resizable = ArrayBuffer as unknown as new (length: number, options: { maxByteLength: number }) => ArrayBuffer & { resize(length: number): void };
      const memory = new Resizable(file.blockSize, { maxByteLength: 2 * file.blockSize });
      const view = new Uint8Array(memory); // length-tracking
      const reading = file.readBlock(0, view);
      memory.resize(2 * file.blockSize);
      view.fill(0xee, file.blockSize);
      await reading;
      assert.ok(view.subarray(file.blockSize).every((byte) => byte === 0xee), "the caller's bytes past the block were zeroed");
    } finally {
      await file?.close();
      await ring.close();
    }
  });

  it('hands an observer a Uint8Array of every written view, a DataView given Uint8Array.prototype too (the write failed on it, uncoded)', async () => {
    const ring = IoUringActor.start();
    let file: RingFile | undefined;
    const seen: number[] = [];
    ring.observer = {
      onSubmit: (mutation) => {
        for (const buffer of mutation.buffers) seen.push(buffer.length);
      },
      onComplete: () => undefined,
    };
    try {
      file = await ring.open(`${dir}/observed`, { create: true });
      const spoofed = Object.setPrototypeOf(new DataView(new ArrayBuffer(4096)), Uint8Array.prototype) as DataView;
      assert.equal(await file.write(spoofed, 0), 4096);
      assert.deepEqual(seen, [4096]);
    } finally {
      await file?.close();
      await ring.close();
    }
  });
  it('sends the kernel the length checked at the call: a length-tracking view grown in an observer\'s onSubmit did not write past its block, and one shrunk is refused with a code', async () => {
    const ring = IoUringActor.start();
    let file: RingFile | undefined;
    try {
      file = await ring.open(`${dir}/grown-in-submit`, { create: true });
      const blockSize = file.blockSize;
      await file.write(Buffer.alloc(3 * blockSize, 0x11), 0);
      const Resizable = ArrayBuffer as unknown as new (length: number, options: { maxByteLength: number }) => ArrayBuffer & { resize(length: number): void };
      const grown = new Resizable(blockSize, { maxByteLength: 2 * blockSize });
      const growing = new Uint8Array(grown).fill(0xaa); // length-tracking
      let told = 0;
      ring.observer = {
        onSubmit: (mutation) => {
          told = mutation.length;
          if (grown.byteLength === blockSize) {
            grown.resize(2 * blockSize);
            growing.fill(0xbb, blockSize);
          }
        },
        onComplete: () => undefined,
      };
      await file.writeBlock(1, growing);
      ring.observer = undefined;
      assert.equal(told, blockSize);
      const back = Buffer.alloc(3 * blockSize);
      await file.read(back, 0);
      assert.ok(back.subarray(blockSize, 2 * blockSize).every((byte) => byte === 0xaa), 'block 1 holds the view');
      assert.ok(back.subarray(2 * blockSize).every((byte) => byte === 0x11), 'block 2 was written over');
      // Shrunk after the check: no partial block; a coded refusal.
      const shrunk = new Resizable(blockSize, { maxByteLength: 2 * blockSize });
      const shrinking = new Uint8Array(shrunk).fill(0xcc);
      ring.observer = {
        onSubmit: () => shrunk.resize(200),
        onComplete: () => undefined,
      };
      const refused = await file.writeBlock(2, shrinking).then(
        () => undefined,
        (error: unknown) => error as { code?: string },
      );
      ring.observer = undefined;
      assert.equal(refused?.code, 'ERR_INVALID_ARG');
      await file.read(back, 0);
      assert.ok(back.subarray(2 * blockSize).every((byte) => byte === 0x11), 'block 2 was partly written');
    } finally {
      ring.observer = undefined;
      await file?.close();
      await ring.close();
    }
  });
});
