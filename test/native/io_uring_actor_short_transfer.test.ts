// Short transfers, injected with IoUringActorOptions.faultInjection
// ({ shortTransferEvery: N }): the kernel moves every byte, the actor is told
// it moved fewer, and continues with the rest. A healthy kernel almost never
// transfers short, so this is the only way the continuation paths of both
// actors run: every read, readv, write, writev, writeAndSync and writeDsync
// must still move exactly its bytes (checked through node:fs), resolve with
// its full length, and the stats must count each continuation.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';

import { allocAligned, IoUringActor, type IoUringActorOptions, type RingFile } from '../../index.js';
import { addon, constants } from '../../native/addon.js';
import { BACKENDS, bytesOf, fillPattern, makeTempDir, pattern, removeTempDir, throwsWith } from './helpers.js';

/** A multiple of every direct-IO alignment ext4 asks for. */
const BLOCK_SIZE = 4096;
/** The periods tried: every completion short, every other one, every third. */
const PERIODS = [1, 2, 3] as const;
/**
 * Each round trip repeats its operation this often on one ring: the
 * injection counts completions over the actor's life, so with a period of N
 * a lone operation on a fresh ring is cut only if N is 1.
 */
const REPETITION_COUNT = 3;
/** Operations in flight at once in the concurrency test. */
const CONCURRENT_OP_COUNT = 64;

/** 'every', 'every 2nd', 'every 3rd': how test names say a period. */
function everyNth(every: number): string {
  if (every === 1) return 'every';
  const suffix = every === 2 ? 'nd' : every === 3 ? 'rd' : 'th';
  return `every ${every}${suffix}`;
}

/**
 * What one transfer does on an actor whose injection counter stands at
 * `completionsBefore`, when the kernel moves every byte asked for: the model
 * of Actor::InjectShortTransfer (native/actor.cc). Returns the continuations
 * it causes and the counter afterwards.
 */
function modelTransfer(
  sizeBytes: number,
  every: number,
  unitBytes: number,
  completionsBefore: number,
): { continuations: number; completions: number } {
  let remaining = sizeBytes;
  let completions = completionsBefore;
  let continuations = 0;
  for (;;) {
    completions++;
    let moved = remaining;
    if (completions % every === 0) {
      const shortened = Math.max(Math.floor(moved / 2 / unitBytes) * unitBytes, unitBytes);
      if (shortened < moved) moved = shortened;
    }
    remaining -= moved;
    if (remaining === 0) return { continuations, completions };
    continuations++;
    assert.ok(continuations < 64, 'the model must end: each step moves at least one unit');
  }
}

describe('IoUringActor faultInjection option', () => {
  it('rejects a faultInjection that is not an object with TypeError ERR_INVALID_ARG', () => {
    for (const faultInjection of [null, 42, 'short', true]) {
      const options = { faultInjection } as unknown as IoUringActorOptions;
      throwsWith(() => IoUringActor.start(options), TypeError, 'ERR_INVALID_ARG');
    }
  });

  it('rejects a shortTransferEvery of another type with TypeError ERR_INVALID_ARG', () => {
    for (const value of ['2', {}, true, null]) {
      const options = { faultInjection: { shortTransferEvery: value } } as unknown as IoUringActorOptions;
      throwsWith(() => IoUringActor.start(options), TypeError, 'ERR_INVALID_ARG');
    }
  });

  for (const value of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, constants.SHORT_TRANSFER_EVERY_MAX + 1]) {
    it(`rejects shortTransferEvery: ${value} with RangeError ERR_INVALID_ARG`, () => {
      throwsWith(() => IoUringActor.start({ faultInjection: { shortTransferEvery: value } }), RangeError, 'ERR_INVALID_ARG');
    });
  }

  it('rejects an unknown fault (a misspelt one would test nothing) with RangeError ERR_INVALID_ARG', () => {
    const options = { faultInjection: { shortTransferEvry: 2 } } as unknown as IoUringActorOptions;
    throwsWith(() => IoUringActor.start(options), RangeError, 'ERR_INVALID_ARG');
  });

  it('is re-checked by the addon, which never trusts JS', () => {
    const spec = { backend: 'io_uring' as const, entries: 8, batchSize: 4, spinUs: 0, threadCount: 1 };
    const completions = new Int32Array(constants.CLIENT_SLOT_COUNT * constants.COMPLETION_WORDS);
    const construct = (shortTransferEvery: number) => () =>
      new addon.NativeRingClient({ ...spec, shortTransferEvery }, () => {}, completions, { completionSpinUs: 0 });
    throwsWith(construct(constants.SHORT_TRANSFER_EVERY_MAX + 1), RangeError, 'ERR_INVALID_ARG');
    throwsWith(construct(-1), RangeError, 'ERR_INVALID_ARG');
  });

  for (const backend of BACKENDS) {
    it(`accepts an empty faultInjection and the largest period (${backend} backend)`, async () => {
      for (const faultInjection of [{}, { shortTransferEvery: constants.SHORT_TRANSFER_EVERY_MAX }]) {
        const ring = IoUringActor.start({ backend, faultInjection });
        await ring.close();
      }
    });
  }
});

for (const backend of BACKENDS) {
  for (const direct of [false, true]) {
    describe(`injected short transfers (${backend} backend, ${direct ? 'direct' : 'buffered'} IO)`, () => {
      let dir: string | undefined;
      let fileCount = 0;

      before(() => {
        dir = makeTempDir();
      });

      after(() => {
        removeTempDir(dir);
      });

      function freshPath(): string {
        return `${dir}/file-${fileCount++}`;
      }

      // The actor's continuations, modelled call by call: no read goes
      // through the JS thread's own ring (ring_file_direct_reads.test.ts
      // continues those).
      function startRing(every: number): IoUringActor {
        return IoUringActor.start({ backend, faultInjection: { shortTransferEvery: every }, directReads: false });
      }

      /** The step a continuation keeps to: the direct-IO alignment, or one byte. */
      function unitOf(file: RingFile): number {
        return direct ? file.offsetAlignment : 1;
      }

      /** Transfer sizes of these tests: an odd size when buffered, whole blocks when direct. */
      const SINGLE_SIZE = direct ? 7 * BLOCK_SIZE : 7 * BLOCK_SIZE + 123;
      const VECTOR_SIZES = direct ? [BLOCK_SIZE, 3 * BLOCK_SIZE, 2 * BLOCK_SIZE, BLOCK_SIZE] : [1000, 3333, 17, 8000, 1];

      /** Aligned buffers of `sizes`, carved from one allocation, holding the pattern of `seed`. */
      function patternBuffers(sizes: readonly number[], seed: number): Buffer[] {
        const total = sizes.reduce((sum, size) => sum + size, 0);
        const whole = fillPattern(allocAligned(total), seed) as Buffer;
        let offset = 0;
        return sizes.map((size) => {
          const part = whole.subarray(offset, offset + size);
          offset += size;
          return part;
        });
      }

      type Writer = (file: RingFile, buffers: Buffer[], position: number) => Promise<number>;
      const writers: [string, readonly number[], Writer][] = [
        ['write()', [SINGLE_SIZE], (file, buffers, position) => file.write(buffers[0], position)],
        ['writev()', VECTOR_SIZES, (file, buffers, position) => file.writev(buffers, position)],
        ['writeAndSync()', VECTOR_SIZES, (file, buffers, position) => file.writeAndSync(buffers, position)],
        ['writeDsync()', VECTOR_SIZES, (file, buffers, position) => file.writeDsync(buffers, position)],
      ];

      for (const [name, sizes, run] of writers) {
        for (const every of PERIODS) {
          it(`${name} writes every byte when ${everyNth(every)} completion is short`, async () => {
            const ring = startRing(every);
            try {
              const path = freshPath();
              const file = await ring.open(path, { create: true, direct });
              const total = sizes.reduce((sum, size) => sum + size, 0);
              const stride = Math.ceil(total / BLOCK_SIZE) * BLOCK_SIZE;
              const image = Buffer.alloc(BLOCK_SIZE + (REPETITION_COUNT - 1) * stride + total);
              let model = { continuations: 0, completions: 0 };
              const before = ring.stats();
              for (let repetition = 0; repetition < REPETITION_COUNT; repetition++) {
                const position = BLOCK_SIZE + repetition * stride;
                const buffers = patternBuffers(sizes, every * 100 + repetition);
                Buffer.concat(buffers).copy(image, position);
                const sqesBefore = ring.stats().sqesSubmitted;
                assert.equal(await run(file, buffers, position), total);
                const step = modelTransfer(total, every, unitOf(file), model.completions);
                model = { continuations: model.continuations + step.continuations, completions: step.completions };
                if (name === 'writeAndSync()' && backend === 'io_uring') {
                  // Each submission of the rest is a write linked to a new
                  // fdatasync (the kernel ran the first one, which the actor
                  // ignored like the cancelled fdatasync of a real short
                  // write): the command resolved only after the last one
                  // succeeded.
                  const sqes = ring.stats().sqesSubmitted - sqesBefore;
                  const pairs = step.continuations + 1;
                  assert.ok(sqes >= 2 * pairs, `${sqes} SQEs for ${pairs} linked write+fdatasync pairs`);
                }
              }
              const after = ring.stats();
              await file.close();
              assert.ok(readFileSync(path).equals(image), 'node:fs read different bytes than were written');
              assert.ok(model.continuations > 0, 'the test transfers must be long enough to be cut');
              assert.equal(after.continuations - before.continuations, model.continuations, 'continuations');
              assert.equal(after.submitted - before.submitted, REPETITION_COUNT, 'a continuation is not a new command');
              assert.equal(after.completed - before.completed, REPETITION_COUNT);
            } finally {
              await ring.close();
            }
          });
        }
      }

      type Reader = (file: RingFile, buffers: Buffer[], position: number) => Promise<number>;
      const readers: [string, readonly number[], Reader][] = [
        ['read()', [SINGLE_SIZE], (file, buffers, position) => file.read(buffers[0], position)],
        ['readv()', VECTOR_SIZES, (file, buffers, position) => file.readv(buffers, position)],
      ];

      for (const [name, sizes, run] of readers) {
        for (const every of PERIODS) {
          it(`${name} reads every byte when ${everyNth(every)} completion is short`, async () => {
            const total = sizes.reduce((sum, size) => sum + size, 0);
            const stride = Math.ceil(total / BLOCK_SIZE) * BLOCK_SIZE;
            const path = freshPath();
            const data = pattern(BLOCK_SIZE + REPETITION_COUNT * stride + BLOCK_SIZE, 10 + every);
            writeFileSync(path, data);
            const ring = startRing(every);
            try {
              const file = await ring.open(path, { direct });
              let model = { continuations: 0, completions: 0 };
              const before = ring.stats();
              for (let repetition = 0; repetition < REPETITION_COUNT; repetition++) {
                const position = BLOCK_SIZE + repetition * stride;
                const buffers = patternBuffers(sizes, 99);
                assert.equal(await run(file, buffers, position), total);
                assert.ok(
                  Buffer.concat(buffers).equals(data.subarray(position, position + total)),
                  `repetition ${repetition}: the ring read different bytes than node:fs wrote`,
                );
                const step = modelTransfer(total, every, unitOf(file), model.completions);
                model = { continuations: model.continuations + step.continuations, completions: step.completions };
              }
              const after = ring.stats();
              assert.ok(model.continuations > 0, 'the test transfers must be long enough to be cut');
              assert.equal(after.continuations - before.continuations, model.continuations, 'continuations');
              assert.equal(after.submitted - before.submitted, REPETITION_COUNT, 'a continuation is not a new command');
              await file.close();
            } finally {
              await ring.close();
            }
          });
        }
      }

      it('stops a read at end-of-file with the bytes up to it when every completion is short', async () => {
        // The file ends 100 bytes into a block: a direct read of it returns
        // off the alignment at end-of-file, a buffered one returns 0 after it.
        const path = freshPath();
        const fileSize = 3 * BLOCK_SIZE + 100;
        const data = pattern(fileSize, 7);
        writeFileSync(path, data);
        const ring = startRing(1);
        try {
          const file = await ring.open(path, { direct });
          const target = allocAligned(5 * BLOCK_SIZE);
          assert.equal(await file.read(target, 0), fileSize);
          assert.ok(target.subarray(0, fileSize).equals(data), 'bytes before end-of-file');
          assert.ok(ring.stats().continuations > 0, 'the read was continued');
          await file.close();
        } finally {
          await ring.close();
        }
      });

      it('leaves a transfer of one alignment unit whole, so continuing always ends', async () => {
        const ring = startRing(1);
        try {
          const path = freshPath();
          const file = await ring.open(path, { create: true, direct });
          const size = direct ? file.offsetAlignment : 1;
          const buffer = patternBuffers([size], 3)[0];
          assert.equal(await file.write(buffer, 0), size);
          assert.equal(ring.stats().continuations, 0);
          await file.close();
          assert.ok(readFileSync(path).equals(buffer), 'node:fs read different bytes than were written');
        } finally {
          await ring.close();
        }
      });

      it(`keeps ${CONCURRENT_OP_COUNT} transfers in flight at once apart while every 3rd completion is short`, async () => {
        const ring = startRing(3);
        try {
          const path = freshPath();
          const file = await ring.open(path, { create: true, direct });
          const blocks = Array.from({ length: CONCURRENT_OP_COUNT }, (_, i) => patternBuffers([2 * BLOCK_SIZE], 1000 + i)[0]);
          const lengths = await Promise.all(blocks.map((block, i) => file.writev([block], i * 2 * BLOCK_SIZE)));
          assert.deepEqual(lengths, blocks.map((block) => block.length));
          const back = Array.from({ length: CONCURRENT_OP_COUNT }, () => allocAligned(2 * BLOCK_SIZE));
          await Promise.all(back.map((buffer, i) => file.read(buffer, i * 2 * BLOCK_SIZE)));
          for (let i = 0; i < CONCURRENT_OP_COUNT; i++) {
            assert.ok(bytesOf(back[i]).equals(blocks[i]), `block pair ${i} read back through the ring`);
          }
          assert.ok(readFileSync(path).equals(Buffer.concat(blocks)), 'node:fs sees every block pair');
          assert.ok(ring.stats().continuations > 0, 'transfers were continued');
          await file.close();
        } finally {
          await ring.close();
        }
      });
    });
  }
}
