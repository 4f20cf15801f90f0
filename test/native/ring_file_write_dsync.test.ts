// writeDsync(): one RWF_DSYNC write, durable on completion, and writes on a
// file opened with `dsync`. Durability itself needs a power cut to prove; these
// tests hold the observable contract on both backends: the bytes land, the
// observer is told the write is durable on completion, errors are coded.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { allocAligned, IoUringActor, type IoMutation } from '../../index.js';
import { BACKENDS, fillPattern, makeTempDir, rejectsWith, removeTempDir } from './helpers.js';

const BLOCK_SIZE = 4096;

for (const backend of BACKENDS) {
  describe(`RingFile#writeDsync() (${backend} backend)`, () => {
    let dir: string | undefined;
    let ring: IoUringActor | undefined;
    let fileCount = 0;

    before(() => {
      dir = makeTempDir();
      ring = IoUringActor.start({ backend });
    });

    after(async () => {
      await ring?.close();
      removeTempDir(dir);
    });

    function block(seed: number): Buffer {
      const buffer = allocAligned(BLOCK_SIZE);
      fillPattern(buffer, seed);
      return buffer;
    }

    for (const direct of [false, true]) {
      it(`writes every buffer at the position and resolves with the byte count (${direct ? 'direct' : 'buffered'})`, async () => {
        const path = `${dir}/dsync-${fileCount++}`;
        const file = await ring!.open(path, { create: true, direct });
        const first = block(1);
        const second = block(2);
        assert.equal(await file.writeDsync([first, second], BLOCK_SIZE), 2 * BLOCK_SIZE);
        assert.equal(await file.writeDsync(block(3), 0), BLOCK_SIZE);
        const onDisk = readFileSync(path);
        assert.ok(onDisk.subarray(0, BLOCK_SIZE).equals(block(3)));
        assert.ok(onDisk.subarray(BLOCK_SIZE, 2 * BLOCK_SIZE).equals(first));
        assert.ok(onDisk.subarray(2 * BLOCK_SIZE, 3 * BLOCK_SIZE).equals(second));
        await file.close();
      });
    }

    it('is reported to the observer as a write that is durable on completion', async () => {
      const file = await ring!.open(`${dir}/observed-${fileCount++}`, { create: true });
      const seen: IoMutation[] = [];
      ring!.observer = { onSubmit: (mutation) => seen.push(mutation), onComplete: () => undefined };
      try {
        await file.writeDsync(block(4), 0);
        await file.write(block(5), BLOCK_SIZE);
      } finally {
        ring!.observer = undefined;
      }
      assert.deepEqual(
        seen.map((mutation) => [mutation.kind, mutation.durableOnCompletion]),
        [
          ['writeDsync', true],
          ['write', false],
        ],
      );
      await file.close();
    });

    it('makes every write of a file opened with dsync durable on completion, as the observer says', async () => {
      const path = `${dir}/dsync-file-${fileCount++}`;
      const file = await ring!.open(path, { create: true, dsync: true });
      const seen: IoMutation[] = [];
      ring!.observer = { onSubmit: (mutation) => seen.push(mutation), onComplete: () => undefined };
      try {
        await file.write(block(6), 0);
        await file.writev([block(7)], BLOCK_SIZE);
      } finally {
        ring!.observer = undefined;
      }
      assert.deepEqual(seen.map((mutation) => mutation.durableOnCompletion), [true, true]);
      assert.ok(readFileSync(path).subarray(BLOCK_SIZE).equals(block(7)));
      await file.close();
    });

    it('refuses a readOnly file, a closed file and non-buffers with coded errors', async () => {
      const path = `${dir}/refused-${fileCount++}`;
      const writable = await ring!.open(path, { create: true });
      await writable.close();
      const readOnly = await ring!.open(path, { readOnly: true });
      await rejectsWith(() => readOnly.writeDsync(block(8), 0), Error, 'ERR_FILE_READ_ONLY');
      await readOnly.close();
      await rejectsWith(() => readOnly.writeDsync(block(8), 0), Error, 'ERR_FILE_CLOSED');
      const file = await ring!.open(path, {});
      await rejectsWith(() => file.writeDsync(['nope' as unknown as Buffer], 0), TypeError, 'ERR_INVALID_ARG');
      await rejectsWith(() => file.writeDsync(block(8), -1), RangeError, 'ERR_INVALID_ARG');
      await file.close();
    });
  });
}
