// The IoObserver hook: every state-changing operation of a ring handle is
// announced on submit and again on completion, in submit order; reads are
// not; operations refused by argument checks are not either.
import assert from 'node:assert/strict';
import { closeSync } from 'node:fs';

import { allocAligned, IoUringActor, type IoMutation, type IoObserver, type RingFile } from '../../index.js';
import {
  BACKENDS,
  CHILD_DIR_SOURCE,
  describeChild,
  fillPattern,
  makeTempDir,
  PACKAGE_ENTRY_URL,
  rejectsWith,
  removeTempDir,
  runNodeModule,
  throwsWith,
} from './helpers.js';

const BLOCK_SIZE = 4096;

interface ObserverEvent {
  phase: 'submit' | 'complete';
  mutation: IoMutation;
  outcome?: number | Error;
}

/** An observer that records every call, and a copy of the submitted bytes. */
class RecordingObserver implements IoObserver {
  readonly events: ObserverEvent[] = [];
  readonly submittedBytes = new Map<number, Buffer>();

  onSubmit(mutation: IoMutation): void {
    this.events.push({ phase: 'submit', mutation });
    this.submittedBytes.set(mutation.seq, Buffer.concat(mutation.buffers.map((bytes) => Buffer.from(bytes))));
  }

  onComplete(mutation: IoMutation, outcome: number | Error): void {
    this.events.push({ phase: 'complete', mutation, outcome });
  }

  submits(): IoMutation[] {
    return this.events.filter((event) => event.phase === 'submit').map((event) => event.mutation);
  }

  completes(): ObserverEvent[] {
    return this.events.filter((event) => event.phase === 'complete');
  }
}

for (const backend of BACKENDS) {
  describe(`IoUringActor#observer (${backend} backend)`, () => {
    let dir: string | undefined;
    let ring: IoUringActor | undefined;
    let file: RingFile;
    let observer: RecordingObserver;
    let fileCount = 0;

    before(async () => {
      dir = makeTempDir();
      ring = IoUringActor.start({ backend });
    });

    beforeEach(async () => {
      observer = new RecordingObserver();
      file = await ring!.open(`${dir}/file-${fileCount++}`, { create: true, direct: true });
    });

    afterEach(async () => {
      ring!.observer = undefined;
      await file.close().catch(() => {});
    });

    after(async () => {
      await ring?.close();
      removeTempDir(dir);
    });

    function patternBlock(seed: number, sizeBytes = BLOCK_SIZE): Buffer {
      const buffer = allocAligned(sizeBytes);
      fillPattern(buffer, seed);
      return buffer;
    }

    it('reports write, writev, writeAndSync, datasync, sync and trim in submit order, and no reads', async () => {
      ring!.observer = observer;
      const single = patternBlock(1);
      const vector = [patternBlock(2), patternBlock(3, 2 * BLOCK_SIZE)];
      const linked = [patternBlock(4)];
      const block = patternBlock(5);
      await file.write(single, 0);
      await file.read(allocAligned(BLOCK_SIZE), 0);
      await file.writev(vector, BLOCK_SIZE);
      await file.readv([allocAligned(BLOCK_SIZE)], 0);
      await file.writeAndSync(linked, 4 * BLOCK_SIZE);
      await file.readBlock(0);
      await file.datasync();
      await file.sync();
      await file.trim(BLOCK_SIZE, 2 * BLOCK_SIZE);
      await file.writeBlock(6, block);

      const submits = observer.submits();
      assert.deepEqual(
        submits.map((mutation) => [mutation.kind, mutation.position, mutation.length]),
        [
          ['write', 0, BLOCK_SIZE],
          ['write', BLOCK_SIZE, 3 * BLOCK_SIZE],
          ['writeAndSync', 4 * BLOCK_SIZE, BLOCK_SIZE],
          ['fdatasync', 0, 0],
          ['fsync', 0, 0],
          ['trim', BLOCK_SIZE, 2 * BLOCK_SIZE],
          ['write', 6 * BLOCK_SIZE, BLOCK_SIZE],
        ],
      );
      const firstSeq = submits[0].seq;
      submits.forEach((mutation, index) => {
        assert.equal(mutation.seq, firstSeq + index, 'seq counts submits');
        assert.equal(mutation.file, file);
      });
      // Each operation was awaited before the next: submit, complete, submit, ...
      assert.deepEqual(
        observer.events.map((event) => `${event.phase} ${event.mutation.seq}`),
        submits.flatMap((mutation) => [`submit ${mutation.seq}`, `complete ${mutation.seq}`]),
      );
    });

    it('numbers the first mutation of a new handle 0', async () => {
      const fresh = IoUringActor.start({ backend });
      try {
        fresh.observer = observer;
        const freshFile = await fresh.open(`${dir}/fresh-${backend}`, { create: true });
        await freshFile.write(Buffer.from('first'), 0);
        await freshFile.datasync();
        assert.deepEqual(observer.submits().map((mutation) => mutation.seq), [0, 1]);
      } finally {
        await fresh.close();
      }
    });

    it('hands onSubmit the exact buffers and bytes being written', async () => {
      ring!.observer = observer;
      const vector = [patternBlock(7), patternBlock(8)];
      await file.writev(vector, 0);
      const [mutation] = observer.submits();
      assert.equal(mutation.buffers.length, 2);
      mutation.buffers.forEach((bytes, index) => {
        assert.ok(bytes instanceof Uint8Array);
        assert.equal(bytes.buffer, vector[index].buffer, 'the caller\'s memory, not a copy');
        assert.equal(bytes.byteOffset, vector[index].byteOffset);
        assert.equal(bytes.byteLength, vector[index].byteLength);
      });
      assert.ok(observer.submittedBytes.get(mutation.seq)!.equals(Buffer.concat(vector)));
      await file.datasync();
      assert.deepEqual(observer.submits()[1].buffers, [], 'a flush carries no data');
    });

    it('says which writes are durable on completion', async () => {
      ring!.observer = observer;
      const dsyncFile = await ring!.open(`${dir}/dsync-${backend}`, { create: true, dsync: true });
      try {
        await file.write(patternBlock(9), 0);
        await file.writeAndSync(patternBlock(10), 0);
        await dsyncFile.write(Buffer.from('durable'), 0);
        assert.deepEqual(
          observer.submits().map((mutation) => [mutation.kind, mutation.durableOnCompletion]),
          [
            ['write', false],
            ['writeAndSync', true],
            ['write', true],
          ],
        );
      } finally {
        await dsyncFile.close();
      }
    });

    it('calls onSubmit synchronously, and onComplete with the outcome before the promise settles', async () => {
      ring!.observer = observer;
      const writing = file.write(patternBlock(11), 0);
      assert.equal(observer.events.length, 1, 'onSubmit ran before write() returned');
      assert.equal(observer.events[0].phase, 'submit');
      const written = await writing;
      assert.equal(observer.events.length, 2, 'onComplete ran before the promise resolved');
      assert.equal(observer.events[1].phase, 'complete');
      assert.equal(observer.events[1].outcome, written);
      assert.equal(written, BLOCK_SIZE);

      await file.sync();
      await file.trim(0, BLOCK_SIZE);
      assert.deepEqual(observer.completes().slice(1).map((event) => event.outcome), [0, 0]);
    });

    it('an onSubmit that closes the file: the operation still goes to that file, and the close waits for it (found by a review: the descriptor was closed first, and its number reused)', async () => {
      let closing: Promise<void> | undefined;
      ring!.observer = {
        onSubmit: () => {
          closing ??= file.close();
        },
        onComplete: () => undefined,
      };
      const data = patternBlock(21);
      const written = await file.write(data, 0);
      assert.equal(written, BLOCK_SIZE);
      await closing;
      ring!.observer = undefined;
      const reopened = await ring!.open(file.path, { direct: true });
      try {
        const back = allocAligned(BLOCK_SIZE);
        await reopened.read(back, 0);
        assert.ok(back.equals(data), 'the write reached the file it was called on');
      } finally {
        await reopened.close();
      }
    });

    it('an onSubmit that throws: the operation is rejected with its error and never sent; the file closes', async () => {
      ring!.observer = {
        onSubmit: () => {
          throw new Error('observer refused');
        },
        onComplete: () => undefined,
      };
      await assert.rejects(file.write(patternBlock(22), 0), /observer refused/);
      ring!.observer = undefined;
      await file.close();
    });

    it('passes the error to onComplete when the kernel fails the operation', async () => {
      ring!.observer = observer;
      closeSync(file.fd);
      const error = await rejectsWith(() => file.write(patternBlock(12), 0), Error, 'EBADF');
      const [completion] = observer.completes();
      assert.equal(completion.outcome, error);
      await file.close().catch(() => {}); // EBADF again: the descriptor is gone
    });

    it('is not called for operations refused by argument checks', async () => {
      ring!.observer = observer;
      const unaligned = allocAligned(2 * BLOCK_SIZE).subarray(1, 1 + BLOCK_SIZE);
      await rejectsWith(() => file.write(unaligned, 0), RangeError, 'ERR_UNALIGNED_DIRECT_IO');
      await rejectsWith(() => file.write('bytes' as unknown as Buffer, 0), TypeError, 'ERR_INVALID_ARG');
      await rejectsWith(() => file.trim(-1, BLOCK_SIZE), RangeError, 'ERR_INVALID_ARG');
      assert.deepEqual(observer.events, []);
    });

    it('sees every mutation of many concurrent ones exactly once', async () => {
      ring!.observer = observer;
      const count = 200;
      await Promise.all(Array.from({ length: count }, (_, index) => file.write(patternBlock(index), index * BLOCK_SIZE)));
      const submits = observer.submits();
      assert.equal(submits.length, count);
      assert.deepEqual(
        submits.map((mutation) => mutation.position),
        Array.from({ length: count }, (_, index) => index * BLOCK_SIZE),
        'submitted in call order',
      );
      assert.deepEqual(
        observer.completes().map((event) => event.mutation.seq).sort((a, b) => a - b),
        submits.map((mutation) => mutation.seq),
      );
    });

    it('stops being called once removed', async () => {
      ring!.observer = observer;
      await file.write(patternBlock(13), 0);
      ring!.observer = undefined;
      assert.equal(ring!.observer, undefined);
      await file.write(patternBlock(14), 0);
      assert.equal(observer.submits().length, 1);
    });
  });
}

describe('IoUringActor#observer setter', () => {
  let ring: IoUringActor | undefined;

  before(() => {
    ring = IoUringActor.start();
  });

  after(async () => {
    await ring?.close();
  });

  it('rejects an object without onSubmit and onComplete methods with TypeError ERR_INVALID_ARG', () => {
    const invalid: unknown[] = [{}, { onSubmit() {} }, { onComplete() {} }, { onSubmit: 1, onComplete: 2 }, 42, 'observer', () => {}];
    for (const value of invalid) {
      throwsWith(() => {
        ring!.observer = value as IoObserver;
      }, TypeError, 'ERR_INVALID_ARG');
    }
    assert.equal(ring!.observer, undefined, 'a rejected observer is not installed');
  });

  it('rejects null with TypeError ERR_INVALID_ARG (undefined removes the observer)', () => {
    throwsWith(() => {
      ring!.observer = null as unknown as IoObserver;
    }, TypeError, 'ERR_INVALID_ARG');
  });
});

describe('An observer whose onComplete throws', () => {
  it('does not keep other operations from settling, and its error is raised on its own', async () => {
    // In a child process: the observer's error surfaces as an uncaught
    // exception, which mocha would take for a failure of its own.
    const source = `
      const { IoUringActor } = await import(${JSON.stringify(PACKAGE_ENTRY_URL)});
      const dir = ${CHILD_DIR_SOURCE};
      const uncaught = [];
      process.on('uncaughtException', (error) => uncaught.push(error.message));
      const ring = IoUringActor.start();
      ring.observer = {
        onSubmit() {},
        onComplete(mutation) { if (mutation.seq % 2 === 0) throw new Error('observer bug ' + mutation.seq); },
      };
      const file = await ring.open(dir + '/file', { create: true });
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => file.write(Buffer.alloc(512, i), i * 512)));
      await new Promise((resolve) => setImmediate(resolve));
      await ring.close();
      console.log(JSON.stringify({ results, uncaught: uncaught.sort() }));
    `;
    const result = await runNodeModule(source);
    assert.equal(result.exitCode, 0, describeChild(result));
    const report = JSON.parse(result.stdout) as { results: number[]; uncaught: string[] };
    assert.deepEqual(report.results, Array.from({ length: 8 }, () => 512));
    assert.deepEqual(report.uncaught, ['observer bug 0', 'observer bug 2', 'observer bug 4', 'observer bug 6']);
  });
});
