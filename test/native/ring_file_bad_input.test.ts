// Bad input never crashes: every misuse of the API is refused before it
// reaches the addon, with a TypeError/RangeError (code ERR_INVALID_ARG) or a
// RingError, as a rejected promise for the asynchronous methods. Nothing is
// submitted, and the ring keeps working afterwards.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';

import { allocAligned, IoUringActor, RingError, type RingFile } from '../../index.js';
import { constants } from '../../native/addon.js';
import { makeTempDir, pattern, rejectsWith, removeTempDir } from './helpers.js';

const BLOCK_SIZE = 4096;

/** Values of the wrong type for a buffer argument. */
const NOT_BUFFERS: [string, unknown][] = [
  ['a string', 'abcd'],
  ['null', null],
  ['undefined', undefined],
  ['a plain object', { byteLength: 16, buffer: new ArrayBuffer(16) }],
  ['an array of numbers', [1, 2, 3]],
  ['an ArrayBuffer (not a view)', new ArrayBuffer(16)],
  ['a number', 16],
];

/** Values of the wrong type for a position, length or index. */
const NOT_NUMBERS: [string, unknown][] = [
  ['a string', '0'],
  ['null', null],
  ['undefined', undefined],
  ['an object', { valueOf: () => 0 }],
  ['a bigint', 0n],
];

/** Numbers that are not valid positions. */
const BAD_POSITIONS: [string, number][] = [
  ['-1', -1],
  ['1.5', 1.5],
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['-0.5', -0.5],
  ['2^53', 2 ** 53],
];

/** A detached view: its ArrayBuffer was transferred away. */
function detachedView(): Uint8Array {
  const view = new Uint8Array(BLOCK_SIZE);
  structuredClone(view.buffer, { transfer: [view.buffer] });
  assert.equal(view.byteLength, 0, 'the view is detached');
  return view;
}

describe('RingFile bad input', () => {
  let dir: string | undefined;
  let ring: IoUringActor | undefined;
  let file: RingFile;
  let submittedBefore = 0;
  /** Tests after which the actor had more submissions than they account for. */
  const submittingTests: string[] = [];

  before(async () => {
    dir = makeTempDir();
    ring = IoUringActor.start();
    file = await ring.open(`${dir}/file`, { create: true, sizeBytes: 4 * BLOCK_SIZE });
  });

  /** Commands that reached the kernel: the actor's, and those through this thread's own ring (a lone read). */
  function submittedCount(): number {
    const stats = ring!.stats();
    return stats.submitted + stats.directReads + stats.directWrites;
  }

  beforeEach(() => {
    submittedBefore = submittedCount();
  });

  afterEach(function () {
    // Recorded, not asserted: a failing hook would skip the remaining tests.
    const submitted = submittedCount();
    if (submitted !== submittedBefore) {
      submittingTests.push(`${this.currentTest?.fullTitle()}: ${submitted - submittedBefore} submitted`);
    }
  });

  after(async () => {
    await ring?.close();
    removeTempDir(dir);
  });

  describe('buffers of the wrong type', () => {
    for (const [name, value] of NOT_BUFFERS) {
      it(`rejects ${name} as a buffer with TypeError ERR_INVALID_ARG`, async () => {
        const buffer = value as Buffer;
        await rejectsWith(() => file.read(buffer, 0), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(() => file.write(buffer, 0), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(() => file.readv([buffer], 0), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(() => file.writev([Buffer.alloc(4), buffer], 0), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(() => file.writeAndSync([buffer], 0), TypeError, 'ERR_INVALID_ARG');
      });
    }

    // (An array is a list; the elements of one are checked above.)
    for (const [name, value] of NOT_BUFFERS.filter(([, candidate]) => !Array.isArray(candidate))) {
      it(`rejects ${name} as the buffer list of readv(), writev() and writeAndSync() with TypeError ERR_INVALID_ARG`, async () => {
        const list = value as Buffer[];
        await rejectsWith(() => file.readv(list, 0), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(() => file.writev(list, 0), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(() => file.writeAndSync(list, 0), TypeError, 'ERR_INVALID_ARG');
      });
    }

    it('rejects a buffer list it cannot read (a revoked Proxy, an index getter that throws) with TypeError ERR_INVALID_ARG, never a synchronous throw (found by a review)', async () => {
      const throwingGetter = (): Buffer[] => {
        const list = [Buffer.alloc(BLOCK_SIZE)];
        Object.defineProperty(list, 0, {
          get() {
            throw new Error('getter');
          },
        });
        return list;
      };
      const revokedProxy = (): Buffer[] => {
        const { proxy, revoke } = Proxy.revocable([Buffer.alloc(BLOCK_SIZE)], {});
        revoke();
        return proxy;
      };
      // Thrown values whose message or string form throws again.
      const throwingBare = (): Buffer[] => {
        const list = [Buffer.alloc(BLOCK_SIZE)];
        Object.defineProperty(list, 0, {
          get() {
            throw Object.create(null);
          },
        });
        return list;
      };
      for (const make of [throwingGetter, revokedProxy, throwingBare]) {
        for (const call of [file.readv, file.writev, file.writeAndSync, file.writeDsync]) {
          const error = await rejectsWith(() => call.call(file, make(), 0), TypeError, 'ERR_INVALID_ARG');
          assert.ok(error.cause !== undefined, `${call.name}: the list's own error is the cause`);
        }
      }
    });

    it('rejects a non-buffer as the buffer of readBlock() and writeBlock() with TypeError ERR_INVALID_ARG', async () => {
      // Like read() and write() do for the same values. (readBlock(index)
      // without a buffer allocates one, so undefined is not misuse there.)
      for (const [name, value] of NOT_BUFFERS) {
        if (value !== undefined) {
          const readError = await file.readBlock(0, value as Buffer).catch((error: Error) => error);
          assert.ok(readError instanceof TypeError, `readBlock(0, ${name}) gave ${String(readError)}`);
        }
        const writeError = await file.writeBlock(0, value as Buffer).catch((error: Error) => error);
        assert.ok(writeError instanceof TypeError, `writeBlock(0, ${name}) gave ${String(writeError)}`);
        assert.equal((writeError as { code?: string }).code, 'ERR_INVALID_ARG');
      }
    });
  });

  describe('detached buffers', () => {
    it('rejects a detached buffer with TypeError ERR_INVALID_ARG', async () => {
      await rejectsWith(() => file.read(detachedView(), 0), TypeError, 'ERR_INVALID_ARG');
      await rejectsWith(() => file.write(detachedView(), 0), TypeError, 'ERR_INVALID_ARG');
      await rejectsWith(() => file.readv([Buffer.alloc(8), detachedView()], 0), TypeError, 'ERR_INVALID_ARG');
      await rejectsWith(() => file.writev([detachedView()], 0), TypeError, 'ERR_INVALID_ARG');
      await rejectsWith(() => file.writeAndSync(detachedView(), 0), TypeError, 'ERR_INVALID_ARG');
    });

    it("reads a view's buffer, offset and length through the built-in getters, never its own properties (an own buffer of null threw an uncoded TypeError; an own byteLength let readBlock take a 200-byte view)", async () => {
      for (const own of [{ value: null }, { get: (): never => { throw new Error('boom'); } }]) {
        const empty = Object.defineProperty(new Uint8Array(0), 'buffer', own);
        // An empty view moves nothing: 0, as fs does, whatever its own properties say.
        assert.equal(await file.read(empty, 0), 0);
        assert.equal(await file.write(empty, 0), 0);
      }
      const short = Object.defineProperty(new Uint8Array(200), 'byteLength', { value: BLOCK_SIZE });
      await rejectsWith(() => file.readBlock(0, short), RangeError, 'ERR_INVALID_ARG');
      // writeBlock too: it wrote the 200 real bytes into the block and resolved.
      await rejectsWith(() => file.writeBlock(0, short), RangeError, 'ERR_INVALID_ARG');
      const Resizable = ArrayBuffer as unknown as new (length: number, options: { maxByteLength: number }) => ArrayBuffer & { resize(length: number): void };
      const resizable = new Resizable(BLOCK_SIZE, { maxByteLength: 2 * BLOCK_SIZE });
      const shrunk = new DataView(resizable, 0, BLOCK_SIZE);
      resizable.resize(100);
      for (const call of [() => file.readBlock(0, shrunk), () => file.writeBlock(0, shrunk)]) await rejectsWith(call, TypeError, 'ERR_INVALID_ARG');
    });

    it('rejects an operation whose buffer was detached while it waited for a slot', async () => {
      // Fill every native slot so the next operation waits in the JS FIFO,
      // then detach its buffer before it is dispatched.
      const slotCount = constants.CLIENT_SLOT_COUNT;
      const target = Buffer.alloc(16);
      const fillers: Promise<number>[] = [];
      for (let i = 0; i < slotCount; i++) fillers.push(file.read(target, (i % 4) * BLOCK_SIZE));
      const buffer = new Uint8Array(BLOCK_SIZE);
      const waiting = file.write(buffer, 0);
      assert.equal(ring!.stats().waitingInJs, 1);
      structuredClone(buffer.buffer, { transfer: [buffer.buffer] });
      const error = await rejectsWith(() => waiting, TypeError, 'ERR_INVALID_ARG');
      assert.match(error.message, /detached/);
      assert.ok((await Promise.all(fillers)).every((bytes) => bytes === 16));
      submittedBefore += slotCount; // the fillers were real operations
    });
  });

  describe('positions', () => {
    for (const [name, value] of NOT_NUMBERS) {
      it(`rejects ${name} as a position with TypeError ERR_INVALID_ARG`, async () => {
        const position = value as number;
        const buffer = Buffer.alloc(16);
        await rejectsWith(() => file.read(buffer, position), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(() => file.write(buffer, position), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(() => file.readv([buffer], position), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(() => file.writev([buffer], position), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(() => file.writeAndSync(buffer, position), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(() => file.trim(position, 16), TypeError, 'ERR_INVALID_ARG');
      });
    }

    for (const [name, position] of BAD_POSITIONS) {
      it(`rejects ${name} as a position with RangeError ERR_INVALID_ARG`, async () => {
        const buffer = Buffer.alloc(16);
        await rejectsWith(() => file.read(buffer, position), RangeError, 'ERR_INVALID_ARG');
        await rejectsWith(() => file.write(buffer, position), RangeError, 'ERR_INVALID_ARG');
        await rejectsWith(() => file.readv([buffer], position), RangeError, 'ERR_INVALID_ARG');
        await rejectsWith(() => file.writev([buffer], position), RangeError, 'ERR_INVALID_ARG');
        await rejectsWith(() => file.writeAndSync(buffer, position), RangeError, 'ERR_INVALID_ARG');
        await rejectsWith(() => file.trim(position, 16), RangeError, 'ERR_INVALID_ARG');
      });
    }

    it('rejects a position whose end passes 2^53-1 with RangeError ERR_INVALID_ARG', async () => {
      const position = Number.MAX_SAFE_INTEGER - 8;
      await rejectsWith(() => file.read(Buffer.alloc(16), position), RangeError, 'ERR_INVALID_ARG');
      await rejectsWith(() => file.trim(position, 16), RangeError, 'ERR_INVALID_ARG');
    });
  });

  describe('lengths and block indexes', () => {
    for (const [name, value] of NOT_NUMBERS) {
      it(`rejects ${name} as a trim length with TypeError ERR_INVALID_ARG`, async () => {
        await rejectsWith(() => file.trim(0, value as number), TypeError, 'ERR_INVALID_ARG');
      });

      it(`rejects ${name} as a block index with TypeError ERR_INVALID_ARG`, async () => {
        await rejectsWith(() => file.readBlock(value as number), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(() => file.writeBlock(value as number, allocAligned(BLOCK_SIZE)), TypeError, 'ERR_INVALID_ARG');
      });
    }

    for (const [name, value] of BAD_POSITIONS) {
      it(`rejects ${name} as a trim length with RangeError ERR_INVALID_ARG`, async () => {
        await rejectsWith(() => file.trim(0, value), RangeError, 'ERR_INVALID_ARG');
      });

      it(`rejects ${name} as a block index with RangeError ERR_INVALID_ARG`, async () => {
        await rejectsWith(() => file.readBlock(value), RangeError, 'ERR_INVALID_ARG');
        await rejectsWith(() => file.writeBlock(value, allocAligned(BLOCK_SIZE)), RangeError, 'ERR_INVALID_ARG');
      });
    }

    it('rejects a block buffer that is not blockSize bytes with RangeError ERR_INVALID_ARG', async () => {
      for (const size of [0, 1, BLOCK_SIZE - 1, BLOCK_SIZE + 1, 2 * BLOCK_SIZE]) {
        await rejectsWith(() => file.readBlock(0, Buffer.alloc(size)), RangeError, 'ERR_INVALID_ARG');
        await rejectsWith(() => file.writeBlock(0, Buffer.alloc(size)), RangeError, 'ERR_INVALID_ARG');
      }
    });
  });

  describe('buffer lists', () => {
    it('rejects an empty list with RangeError ERR_INVALID_ARG in readv(), writev(), writeAndSync() and writeDsync()', async () => {
      // docs/io.md: 1–1024 buffers. Nothing is submitted (checked after each
      // test): an empty writeAndSync is not a bare fdatasync.
      for (const [name, start] of [
        ['readv', () => file.readv([], 0)],
        ['writev', () => file.writev([], 0)],
        ['writeAndSync', () => file.writeAndSync([], 0)],
        ['writeDsync', () => file.writeDsync([], 0)],
      ] as const) {
        const error = await rejectsWith(start, RangeError, 'ERR_INVALID_ARG');
        assert.match(error.message, /1 to 1024 buffers, got 0/, name);
      }
    });

    it('rejects an empty list on a direct file too, before any alignment check', async () => {
      const direct = await ring!.open(`${dir}/file`, { direct: true });
      try {
        await rejectsWith(() => direct.readv([], 0), RangeError, 'ERR_INVALID_ARG');
        await rejectsWith(() => direct.writeAndSync([], 4096), RangeError, 'ERR_INVALID_ARG');
      } finally {
        await direct.close();
      }
    });

    it('rejects an empty buffer inside a list with RangeError ERR_INVALID_ARG', async () => {
      const list = [Buffer.alloc(8), Buffer.alloc(16).subarray(0, 0)];
      await rejectsWith(() => file.readv(list, 0), RangeError, 'ERR_INVALID_ARG');
      await rejectsWith(() => file.writev(list, 0), RangeError, 'ERR_INVALID_ARG');
      await rejectsWith(() => file.writeAndSync(list, 0), RangeError, 'ERR_INVALID_ARG');
    });

    it(`rejects more than IOV_COUNT_MAX (${constants.IOV_COUNT_MAX}) buffers with RangeError ERR_INVALID_ARG`, async () => {
      const list = Array.from({ length: constants.IOV_COUNT_MAX + 1 }, () => Buffer.alloc(1));
      await rejectsWith(() => file.readv(list, 0), RangeError, 'ERR_INVALID_ARG');
      await rejectsWith(() => file.writev(list, 0), RangeError, 'ERR_INVALID_ARG');
      await rejectsWith(() => file.writeAndSync(list, 0), RangeError, 'ERR_INVALID_ARG');
    });

    it(`accepts exactly IOV_COUNT_MAX (${constants.IOV_COUNT_MAX}) buffers`, async () => {
      const list = Array.from({ length: constants.IOV_COUNT_MAX }, (_, index) => Buffer.alloc(1, index));
      assert.equal(await file.writev(list, 0), constants.IOV_COUNT_MAX);
      submittedBefore += 1;
    });
  });

  describe('lists and views that answer differently each time (found by a review)', () => {
    it('submits the list it checked: an array whose elements change between reads cannot slip an unaligned buffer to a direct file', async () => {
      const direct = await ring!.open(`${dir}/file`, { direct: true });
      try {
        const aligned = allocAligned(BLOCK_SIZE);
        const unaligned = Buffer.alloc(BLOCK_SIZE + 1).subarray(1);
        let reads = 0;
        // Index 0 reads aligned the first time (the check), unaligned after.
        const list = new Proxy([aligned], { get: (target, property, receiver) => (property === '0' && reads++ > 0 ? unaligned : Reflect.get(target, property, receiver)) });
        assert.equal(await direct.writev(list, 0), BLOCK_SIZE);
        assert.equal(reads, 1, 'each element read once');
        submittedBefore += 1;
      } finally {
        await direct.close();
      }
    });

    it('rejects a DataView over a resizable ArrayBuffer shrunk below it with TypeError ERR_INVALID_ARG, as a rejection (it threw an uncoded TypeError)', async function () {
      const Resizable = ArrayBuffer as unknown as new (length: number, options: { maxByteLength: number }) => ArrayBuffer & { resize(length: number): void };
      const memory = new Resizable(64, { maxByteLength: 128 });
      if (typeof (memory as { resize?: unknown }).resize !== 'function') this.skip();
      const view = new DataView(memory, 16, 32);
      memory.resize(8);
      for (const start of [() => file.read(view, 0), () => file.write(view, 0), () => file.writev([view], 0), () => file.writeAndSync(view, 0)]) {
        const error = await rejectsWith(start, TypeError, 'ERR_INVALID_ARG');
        assert.match(error.message, /no longer holds/);
      }
    });

    it('keeps fd read-only: assigning it throws, and IO still goes to the file', async () => {
      const number = file.fd;
      assert.throws(() => {
        (file as unknown as { fd: number }).fd = 0;
      }, TypeError);
      assert.equal(file.fd, number);
    });
  });

  describe('transfer size', () => {
    it('rejects a transfer over TRANSFER_SIZE_MAX (1 GiB) with RangeError ERR_INVALID_ARG', async () => {
      assert.equal(constants.TRANSFER_SIZE_MAX, 2 ** 30);
      // Zero-filled and untouched: the kernel maps the pages lazily, so this
      // costs address space, not memory.
      const tooBig = new Uint8Array(constants.TRANSFER_SIZE_MAX + 1);
      await rejectsWith(() => file.read(tooBig, 0), RangeError, 'ERR_INVALID_ARG');
      await rejectsWith(() => file.write(tooBig, 0), RangeError, 'ERR_INVALID_ARG');
      const half = new Uint8Array(constants.TRANSFER_SIZE_MAX / 2 + 1);
      await rejectsWith(() => file.readv([half, half], 0), RangeError, 'ERR_INVALID_ARG');
      await rejectsWith(() => file.writev([half, half], 0), RangeError, 'ERR_INVALID_ARG');
      await rejectsWith(() => file.writeAndSync([half, half], 0), RangeError, 'ERR_INVALID_ARG');
    });
  });

  describe('a readOnly file', () => {
    let readOnly: RingFile;

    before(async () => {
      const path = `${dir}/read-only`;
      writeFileSync(path, pattern(2 * BLOCK_SIZE, 1));
      readOnly = await ring!.open(path, { readOnly: true });
    });

    after(async () => {
      await readOnly.close();
    });

    it('rejects every mutation with ERR_FILE_READ_ONLY', async () => {
      const block = allocAligned(BLOCK_SIZE);
      for (const start of [
        () => readOnly.write(block, 0),
        () => readOnly.writev([block], 0),
        () => readOnly.writeAndSync(block, 0),
        () => readOnly.writeAndSync([], 0),
        () => readOnly.trim(0, BLOCK_SIZE),
        () => readOnly.writeBlock(0, block),
      ]) {
        const error = await rejectsWith(start, RingError, 'ERR_FILE_READ_ONLY');
        assert.match(error.message, /readOnly/);
      }
    });

    it('still reads', async () => {
      assert.ok((await readOnly.readBlock(1)).equals(pattern(2 * BLOCK_SIZE, 1).subarray(BLOCK_SIZE)));
      submittedBefore += 1;
    });
  });

  describe('IoUringActor#open() options', () => {
    it('rejects a path that is not a non-empty string without NUL with TypeError ERR_INVALID_ARG', async () => {
      for (const path of [undefined, null, 42, '', 'a\0b', { toString: () => `${dir}/x` }]) {
        await rejectsWith(() => ring!.open(path as string), TypeError, 'ERR_INVALID_ARG');
      }
    });

    it('rejects options that are not an object with TypeError ERR_INVALID_ARG', async () => {
      for (const options of [null, 'direct', 42]) {
        await rejectsWith(() => ring!.open(`${dir}/x`, options as unknown as object), TypeError, 'ERR_INVALID_ARG');
      }
    });

    it('rejects boolean options of another type with TypeError ERR_INVALID_ARG', async () => {
      for (const name of ['direct', 'dsync', 'create', 'exclusive', 'readOnly']) {
        for (const value of [1, 'true', null]) {
          await rejectsWith(() => ring!.open(`${dir}/x`, { [name]: value }), TypeError, 'ERR_INVALID_ARG');
        }
      }
    });

    it('exclusive: only with create; makes the file, or refuses one that exists with EEXIST (O_EXCL)', async () => {
      await rejectsWith(() => ring!.open(`${dir}/exclusive-alone`, { exclusive: true }), RangeError, 'ERR_INVALID_ARG');
      const path = `${dir}/exclusive`;
      const made = await ring!.open(path, { create: true, exclusive: true });
      await made.close();
      assert.equal(statSync(path).size, 0);
      const refused = await ring!.open(path, { create: true, exclusive: true }).catch((error: unknown) => error);
      assert.ok(refused instanceof Error, `a second exclusive create gave ${String(refused)}`);
      assert.equal((refused as { code?: unknown }).code, 'EEXIST');
      assert.equal((refused as { syscall?: unknown }).syscall, 'open');
      // Without exclusive the file is opened as it is.
      await (await ring!.open(path, { create: true })).close();
    });

    it('rejects a sizeBytes that is not a non-negative integer with RangeError ERR_INVALID_ARG', async () => {
      for (const sizeBytes of [-1, 1.5, Number.NaN, 2 ** 53]) {
        await rejectsWith(() => ring!.open(`${dir}/x`, { create: true, sizeBytes }), RangeError, 'ERR_INVALID_ARG');
      }
    });

    it('rejects a blockSize that is not a power of two from 512 to BLOCK_SIZE_MAX with RangeError ERR_INVALID_ARG', async () => {
      for (const blockSize of [0, 256, 1000, 4097, 2 << 20, -4096, 4096.5]) {
        await rejectsWith(() => ring!.open(`${dir}/x`, { create: true, blockSize }), RangeError, 'ERR_INVALID_ARG');
      }
    });

    it('rejects a sizeBytes or blockSize that is not a number with TypeError ERR_INVALID_ARG', async () => {
      // Like the boolean options, and like IoUringActor.start({ entries: '256' }).
      for (const options of [{ sizeBytes: '4096' }, { blockSize: '4096' }, { sizeBytes: {} }, { blockSize: true }]) {
        const error = await ring!.open(`${dir}/x`, { create: true, ...(options as object) }).catch((error: Error) => error);
        assert.ok(error instanceof TypeError, `open(path, ${JSON.stringify(options)}) gave ${String(error)}`);
        assert.equal((error as { code?: string }).code, 'ERR_INVALID_ARG');
      }
    });

    it('rejects a path that is neither a regular file nor a block device with ERR_INVALID_ARG, without blocking', async () => {
      // A FIFO opened for reading would block until a writer came; a
      // character device or a directory has no bounded IO to offer.
      const fifo = `${dir}/fifo`;
      execFileSync('mkfifo', [fifo]);
      for (const [path, options] of [
        ['/dev/null', {}],
        ['/dev/zero', { readOnly: true }],
        [fifo, { readOnly: true }],
        [dir!, { readOnly: true }],
      ] as const) {
        const error = await rejectsWith(() => ring!.open(path, options), Error, 'ERR_INVALID_ARG');
        assert.match(error.message, /regular file or a block device/, path);
      }
    });

    it("rejects a regular file of the kernel's own file systems (proc, sysfs, tracefs) with ERR_INVALID_ARG: a read of tracefs's trace_pipe never completed, and close(), a worker's exit and process.exit() waited forever behind it", async function () {
      // Whichever of them this machine mounts; each is a "regular file" by its mode.
      const candidates = ['/proc/self/status', '/sys/kernel/mm/transparent_hugepage/enabled', '/sys/kernel/tracing/trace_pipe', '/sys/kernel/debug/tracing/trace_pipe'];
      const present = candidates.filter((path) => {
        try {
          return statSync(path).isFile();
        } catch {
          return false;
        }
      });
      if (present.length === 0) this.skip();
      for (const path of present) {
        const error = await rejectsWith(() => ring!.open(path, { readOnly: true }), Error, 'ERR_INVALID_ARG');
        assert.match(error.message, /file of the kernel's \w+ file system, not storage/, path);
      }
    });

    it('rejects readOnly together with create or sizeBytes with RangeError ERR_INVALID_ARG', async () => {
      await rejectsWith(() => ring!.open(`${dir}/x`, { readOnly: true, create: true }), RangeError, 'ERR_INVALID_ARG');
      await rejectsWith(() => ring!.open(`${dir}/x`, { readOnly: true, sizeBytes: 4096 }), RangeError, 'ERR_INVALID_ARG');
    });
  });

  // Mocha runs a suite's own tests before its nested suites: these go last.
  describe('afterwards', () => {
    it('submitted nothing to the kernel for any of the bad input above', () => {
      assert.deepEqual(submittingTests, []);
    });

    it('leaves the ring working after all of the above', async () => {
      const data = pattern(BLOCK_SIZE, 2);
      assert.equal(await file.write(data, 0), BLOCK_SIZE);
      assert.ok((await file.readBlock(0)).equals(data));
      submittedBefore += 2;
    });
  });
});
