// WriteTrace (tools/lab/write_trace.ts) on a real ring: every state-changing
// IO of the traced file is recorded with its kind, range, durability and
// bytes (copied at submit, so the caller may reuse its buffer), under the
// store's mark in force; IO of other files is not; failures are flagged;
// acknowledgements are events; and a saved trace loads back the same.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { IoUringActor } from '../../native/io_uring_actor.js';
import type { RingFile } from '../../native/ring_file.js';
import { UNMARKED_PHASE, WriteTrace, type TraceEvent, type TraceOperation } from '../../tools/lab/write_trace.js';

const FILE_BYTES = 64 << 10;
/** ext2/3/4 superblock magic (statfs f_type): these refuse offsets past 16 TiB with EFBIG. */
const EXT_SUPER_MAGIC = 0xef53;
/** Past ext4's largest file (16 TiB with 4 KiB blocks), within a JS-safe position. */
const BEYOND_EXT4_MAX_FILE_BYTES = 2 ** 50;

/** Bytes that differ per `seed` and position. */
function pattern(length: number, seed: number): Buffer {
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = (seed * 31 + i * 7) & 0xff;
  return bytes;
}

/** A comparable form of an event: its type and what it carries, operations by id. */
function eventShape(event: TraceEvent): unknown[] {
  switch (event.type) {
    case 'submit':
    case 'complete':
      return [event.type, event.operation.id];
    case 'mark':
      return [event.type, event.phase, event.id];
    case 'ack':
      return [event.type, event.operation];
  }
}

/** The fields recorded for an operation, without the data offset (a side-file detail). */
function recorded(operation: TraceOperation): Pick<TraceOperation, 'kind' | 'position' | 'length' | 'durableOnCompletion' | 'phase' | 'markId' | 'failed'> {
  const { kind, position, length, durableOnCompletion, phase, markId, failed } = operation;
  return { kind, position, length, durableOnCompletion, phase, markId, failed };
}

describe('WriteTrace on a real ring', function () {
  this.timeout(60_000);
  let ring: IoUringActor;
  let dir: string;
  let traceDir: string;
  let path: string;
  let file: RingFile;
  let trace: WriteTrace;

  before(() => {
    ring = IoUringActor.start({ fallback: 'threads' });
  });

  after(async () => {
    await ring.close();
  });

  beforeEach(async () => {
    dir = mkdtempSync(`${tmpdir()}/ringstore-write-trace-`);
    traceDir = mkdtempSync(`${tmpdir()}/ringstore-write-trace-data-`);
    path = join(dir, 'device');
    file = await ring.open(path, { create: true, sizeBytes: FILE_BYTES });
    trace = new WriteTrace(path, traceDir);
    ring.observer = trace;
  });

  afterEach(async () => {
    ring.observer = undefined;
    await file.close();
    trace.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(traceDir, { recursive: true, force: true });
  });

  it('records every write, writev, writeAndSync, writeDsync, datasync, sync and trim with its kind, range and durability', async () => {
    await file.write(pattern(1000, 1), 100);
    await file.writev([pattern(512, 2), pattern(300, 3)], 4096);
    await file.writeAndSync([pattern(512, 4)], 8192);
    await file.writeDsync(pattern(1024, 5), 12_288);
    await file.datasync();
    await file.trim(16_384, 4096);
    await file.sync();
    assert.deepEqual(trace.operations.map(recorded), [
      { kind: 'write', position: 100, length: 1000, durableOnCompletion: false, phase: UNMARKED_PHASE, markId: undefined, failed: false },
      { kind: 'write', position: 4096, length: 812, durableOnCompletion: false, phase: UNMARKED_PHASE, markId: undefined, failed: false },
      { kind: 'writeAndSync', position: 8192, length: 512, durableOnCompletion: true, phase: UNMARKED_PHASE, markId: undefined, failed: false },
      { kind: 'writeDsync', position: 12_288, length: 1024, durableOnCompletion: true, phase: UNMARKED_PHASE, markId: undefined, failed: false },
      { kind: 'flush', position: 0, length: 0, durableOnCompletion: false, phase: UNMARKED_PHASE, markId: undefined, failed: false },
      { kind: 'trim', position: 16_384, length: 4096, durableOnCompletion: false, phase: UNMARKED_PHASE, markId: undefined, failed: false },
      { kind: 'flush', position: 0, length: 0, durableOnCompletion: false, phase: UNMARKED_PHASE, markId: undefined, failed: false },
    ]);
    assert.deepEqual(
      trace.operations.map((operation) => operation.id),
      trace.operations.map((_, index) => index),
    );
    // Each operation was awaited: its completion came right after its submit.
    assert.deepEqual(
      trace.events.map(eventShape),
      trace.operations.flatMap((operation) => [
        ['submit', operation.id],
        ['complete', operation.id],
      ]),
    );
    for (const operation of trace.operations) {
      assert.equal(trace.events[operation.completedAt!].type, 'complete');
      assert.equal((trace.events[operation.completedAt!] as { operation: TraceOperation }).operation, operation);
    }
    // Flushes and trims carry no data.
    for (const operation of trace.operations.filter((candidate) => candidate.kind === 'flush' || candidate.kind === 'trim')) {
      assert.equal(operation.dataOffset, -1);
      assert.throws(() => trace.dataOf(operation), /wrote no data/);
    }
  });

  it('keeps the bytes of each write as submitted, even after the caller reuses its buffers', async () => {
    const single = pattern(1000, 11);
    const first = pattern(512, 12);
    // A non-byte view: recorded as the bytes it covers.
    const second = new DataView(pattern(700, 13).buffer, 100, 400);
    const linked = pattern(512, 14);
    const dsync = pattern(2048, 15);
    const expected = [
      Buffer.from(single),
      Buffer.concat([first, Buffer.from(second.buffer, second.byteOffset, second.byteLength)]),
      Buffer.from(linked),
      Buffer.from(dsync),
    ];
    await file.write(single, 0);
    await file.writev([first, second], 2048);
    await file.writeAndSync(linked, 8192);
    await file.writeDsync([dsync], 16_384);
    for (const buffer of [single, first, linked, dsync]) buffer.fill(0xaa);
    new Uint8Array(second.buffer).fill(0xaa);
    assert.equal(trace.operations.length, expected.length);
    trace.operations.forEach((operation, index) => {
      assert.ok(Buffer.from(trace.dataOf(operation)).equals(expected[index]), `operation ${index} (${operation.kind}): bytes differ`);
    });
    // The data are what reached the file, too.
    const onFile = Buffer.alloc(1000);
    await file.read(onFile, 0);
    assert.ok(onFile.equals(expected[0]));
  });

  it('flags a write on an O_DSYNC file durable on completion, and records a write through a second handle of the same file', async () => {
    const dsyncFile = await ring.open(path, { dsync: true });
    try {
      await dsyncFile.write(pattern(512, 21), 0);
      await dsyncFile.writev([pattern(512, 22)], 512);
    } finally {
      await dsyncFile.close();
    }
    assert.deepEqual(
      trace.operations.map((operation) => [operation.kind, operation.position, operation.durableOnCompletion]),
      [
        ['write', 0, true],
        ['write', 512, true],
      ],
    );
  });

  it('files operations under the latest mark of the traced file: earlier ones unmarked', async () => {
    await file.write(pattern(512, 31), 0);
    file.mark('wal', 7);
    await file.write(pattern(512, 32), 512);
    await file.writeAndSync(pattern(512, 33), 1024);
    await file.trim(4096, 4096);
    file.mark('superblock');
    await file.datasync();
    const phases = trace.operations.map((operation) => [operation.kind, operation.phase, operation.markId]);
    assert.deepEqual(phases, [
      ['write', UNMARKED_PHASE, undefined],
      ['write', 'wal', 7],
      ['writeAndSync', 'wal', 7],
      ['trim', 'wal', 7],
      ['flush', 'superblock', undefined],
    ]);
    assert.deepEqual(trace.events.map(eventShape), [
      ['submit', 0],
      ['complete', 0],
      ['mark', 'wal', 7],
      ['submit', 1],
      ['complete', 1],
      ['submit', 2],
      ['complete', 2],
      ['submit', 3],
      ['complete', 3],
      ['mark', 'superblock', undefined],
      ['submit', 4],
      ['complete', 4],
    ]);
  });

  it('records nothing of another file: neither its IO nor its marks', async () => {
    const other = await ring.open(join(dir, 'other'), { create: true, sizeBytes: FILE_BYTES });
    try {
      file.mark('data', 3);
      other.mark('wal', 99);
      await other.write(pattern(512, 41), 0);
      await other.writeAndSync(pattern(512, 42), 512);
      await other.writeDsync(pattern(512, 43), 1024);
      await other.trim(4096, 4096);
      await other.datasync();
      await file.write(pattern(512, 44), 0);
    } finally {
      await other.close();
    }
    assert.deepEqual(trace.operations.map(recorded), [
      { kind: 'write', position: 0, length: 512, durableOnCompletion: false, phase: 'data', markId: 3, failed: false },
    ]);
    assert.deepEqual(trace.events.map(eventShape), [
      ['mark', 'data', 3],
      ['submit', 0],
      ['complete', 0],
    ]);
  });

  it('records nothing while detached, nor reads', async () => {
    await file.read(Buffer.alloc(512), 0);
    ring.observer = undefined;
    await file.write(pattern(512, 51), 0);
    await file.datasync();
    file.mark('wal', 1);
    ring.observer = trace;
    assert.deepEqual(trace.events, []);
    assert.deepEqual(trace.operations, []);
  });

  it('marks an operation the kernel failed as failed with its code, and the next one not, with its bytes', async function () {
    if (statfsSync(dir).type !== EXT_SUPER_MAGIC) {
      this.skip(); // Only ext2/3/4 refuse these offsets; elsewhere the writes succeed (sparse files).
    }
    await assert.rejects(file.write(pattern(512, 61), BEYOND_EXT4_MAX_FILE_BYTES), { code: 'EFBIG' });
    await assert.rejects(file.writeAndSync(pattern(512, 62), BEYOND_EXT4_MAX_FILE_BYTES), { code: 'EFBIG' });
    await assert.rejects(file.writeDsync(pattern(512, 63), BEYOND_EXT4_MAX_FILE_BYTES), { code: 'EFBIG' });
    await assert.rejects(file.trim(BEYOND_EXT4_MAX_FILE_BYTES, 4096), { code: 'EFBIG' });
    await file.write(pattern(512, 64), 0);
    assert.deepEqual(
      trace.operations.map((operation) => [operation.kind, operation.failed, operation.completedAt !== undefined, operation.result]),
      [
        ['write', true, true, 'EFBIG'],
        ['writeAndSync', true, true, 'EFBIG'],
        ['writeDsync', true, true, 'EFBIG'],
        ['trim', true, true, 'EFBIG'],
        ['write', false, true, 512],
      ],
    );
    // A failed write's bytes are kept: it may have landed some of them.
    assert.ok(Buffer.from(trace.dataOf(trace.operations[0])).equals(pattern(512, 61)));
  });

  it('records acknowledgements as events, in order with the IO', async () => {
    await file.writeAndSync(pattern(512, 71), 0);
    trace.acknowledge(0);
    await file.writeAndSync(pattern(512, 72), 512);
    trace.acknowledge(1);
    trace.acknowledge(5);
    assert.deepEqual(trace.events.map(eventShape), [
      ['submit', 0],
      ['complete', 0],
      ['ack', 0],
      ['submit', 1],
      ['complete', 1],
      ['ack', 1],
      ['ack', 5],
    ]);
  });

  it('saves and loads back the same operations, events and data, an operation still in flight included', async () => {
    await file.write(pattern(700, 81), 0);
    file.mark('wal', 7);
    await file.writev([pattern(512, 82), pattern(512, 83)], 1024);
    trace.acknowledge(0);
    file.mark('checkpoint');
    await file.trim(8192, 4096);
    await file.datasync();
    file.mark('superblock', 0);
    await file.writeDsync(pattern(512, 84), 16_384);
    trace.acknowledge(1);
    // Saved while this write is in flight: its completion is not in the file.
    const inFlight = file.write(pattern(512, 85), 20_480);
    trace.save();
    await inFlight;

    const loaded = WriteTrace.load(traceDir);
    try {
      assert.equal(loaded.path, path);
      assert.equal(loaded.directory, traceDir);
      const saved = trace.operations.map((operation) => ({ ...operation }));
      saved[saved.length - 1].completedAt = undefined;
      saved[saved.length - 1].result = undefined;
      assert.deepEqual(
        loaded.operations.map((operation) => ({ ...operation })),
        saved,
      );
      const savedEvents = trace.events.slice(0, -1).map(eventShape);
      assert.deepEqual(loaded.events.map(eventShape), savedEvents);
      assert.deepEqual(
        savedEvents.filter(([type]) => type === 'mark' || type === 'ack'),
        [
          ['mark', 'wal', 7],
          ['ack', 0],
          ['mark', 'checkpoint', undefined],
          ['mark', 'superblock', 0],
          ['ack', 1],
        ],
      );
      // Events refer to the loaded operations themselves, and completions are where completedAt says.
      for (const event of loaded.events) {
        if (event.type === 'submit' || event.type === 'complete') assert.equal(event.operation, loaded.operations[event.operation.id]);
      }
      for (const operation of loaded.operations) {
        if (operation.completedAt !== undefined) assert.deepEqual(eventShape(loaded.events[operation.completedAt]), ['complete', operation.id]);
      }
      for (const operation of loaded.operations) {
        if (operation.kind === 'flush' || operation.kind === 'trim') continue;
        assert.ok(Buffer.from(loaded.dataOf(operation)).equals(trace.dataOf(trace.operations[operation.id])), `operation ${operation.id}: data differ`);
      }
    } finally {
      loaded.close();
    }
  });

  it('refuses to load a directory without a saved trace', () => {
    assert.throws(() => WriteTrace.load(dir), /no write trace in .*trace\.json is missing/);
  });
});

describe('IoUringActor#observer', () => {
  let ring: IoUringActor;

  before(() => {
    ring = IoUringActor.start({ fallback: 'threads' });
  });

  after(async () => {
    await ring.close();
  });

  it('throws a TypeError for an observer whose onMark is not a function, and keeps the one it had', () => {
    const kept = { onSubmit(): void {}, onComplete(): void {} };
    ring.observer = kept;
    const bad = { onSubmit(): void {}, onComplete(): void {}, onMark: 'wal' };
    assert.throws(
      () => {
        ring.observer = bad as never;
      },
      (error: unknown) => error instanceof TypeError && (error as { code?: string }).code === 'ERR_INVALID_ARG' && /onMark/.test(error.message),
    );
    assert.equal(ring.observer, kept);
    for (const other of [null, 5, { onSubmit(): void {} }, { onComplete(): void {} }, { onSubmit: 1, onComplete(): void {} }]) {
      assert.throws(() => {
        ring.observer = other as never;
      }, TypeError);
    }
    assert.equal(ring.observer, kept);
    // Without onMark at all it is fine, and undefined detaches.
    ring.observer = undefined;
    assert.equal(ring.observer, undefined);
  });
});
