// LabStore (tools/lab/lab_store.ts): the oracle's books. Every write call is
// recorded in call order; an acknowledgement goes to the trace when the
// write is durable by the store's promise — on resolve with sync: true, and
// with sync: false when a flush(), reopen() or close() called after it
// resolves, even if the write itself had not resolved when flush() was
// called. Refused writes are marked and never acknowledged.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

import { once } from 'node:events';
import type { Writable } from 'node:stream';

import { commitRecordCount } from '../../format/commit.js';
import { decodeFrameBlock, frameBlockPayload } from '../../format/frame.js';
import { exploreCorruption } from '../../tools/lab/corruption_explorer.js';
import { exploreCrashStates } from '../../tools/lab/crash_explorer.js';
import type { LabStore } from '../../tools/lab/lab_store.js';
import { runWorkload, type TracedWorkload } from '../../tools/lab/workload.js';
import type { TraceEvent } from '../../tools/lab/write_trace.js';

/** Index in the trace's events of operation `index`'s acknowledgement, or -1. */
function ackAt(events: readonly TraceEvent[], index: number): number {
  return events.findIndex((event) => event.type === 'ack' && event.operation === index);
}

/** Each commit's sequence and record count, from the WAL frames the trace holds: the truth a recorded commit is checked against. */
function walCommits(traced: TracedWorkload): Map<number, number> {
  const blockSize = traced.store.blockSize;
  const records = new Map<number, number>();
  for (const operation of traced.trace.operations) {
    if (operation.phase !== 'wal' || operation.length === 0) continue;
    const first = traced.trace.dataOf(operation).subarray(0, blockSize);
    const header = decodeFrameBlock('wal', first, Math.floor(operation.position / blockSize));
    if (header.blockIndex === 0) records.set(header.sequence, commitRecordCount(frameBlockPayload(first, header)));
  }
  return records;
}

/** Checks every operation's recorded commit against the WAL's commits, in order; returns how many commits there were. */
function assertRecordedCommits(traced: TracedWorkload): number {
  const records = walCommits(traced);
  const sequences = [...records.keys()].sort((a, b) => a - b);
  let commit = 0;
  let taken = 0;
  for (const operation of traced.operations) {
    assert.ok(operation.refused !== true, operation.label);
    while (taken + operation.writes.length > records.get(sequences[commit])!) {
      commit++;
      taken = 0;
    }
    taken += operation.writes.length;
    assert.equal(operation.commitSequence, sequences[commit], operation.label);
  }
  return sequences.length;
}

/** Writes `bytes` to a write stream in chunks of `chunkBytes` and ends it; resolves at 'finish'. */
async function streamBytes(stream: Writable, bytes: Buffer, chunkBytes: number): Promise<void> {
  for (let offset = 0; offset < bytes.length; offset += chunkBytes) {
    if (!stream.write(bytes.subarray(offset, offset + chunkBytes))) await once(stream, 'drain');
  }
  stream.end();
  await once(stream, 'finish');
}

describe('LabStore', function () {
  this.timeout(60_000);
  let dir: string;
  let traced: TracedWorkload | undefined;

  beforeEach(() => {
    dir = mkdtempSync(`${tmpdir()}/ringstore-lab-store-`);
  });

  afterEach(() => {
    traced?.trace.close();
    traced = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('acknowledges a sync: true write when it resolves, before the next call', async () => {
    let acknowledgedAtResolve = -1;
    traced = await runWorkload(dir, async (store: LabStore) => {
      await store.put('a', 1);
      acknowledgedAtResolve = ackAt(store.trace.events, 0);
      await store.put('b', 2);
    });
    const events = traced.trace.events;
    assert.ok(acknowledgedAtResolve >= 0, 'not acknowledged when put() resolved');
    assert.ok(ackAt(events, 0) < ackAt(events, 1));
    assert.deepEqual(
      traced.operations.map((operation) => [operation.label, operation.writes]),
      [
        ['#0 put "a"', [['a', 1]]],
        ['#1 put "b"', [['b', 2]]],
      ],
    );
  });

  it('acknowledges sync: false writes at the flush called after them, resolved or not, and not before', async () => {
    let eventsBeforeFlush = -1;
    let eventsAfterFlush = -1;
    traced = await runWorkload(
      dir,
      async (store: LabStore) => {
        await store.put('resolved', 'x');
        const unresolved = store.put('in flight', 'y');
        const deletion = store.delete('resolved');
        eventsBeforeFlush = store.trace.events.length;
        await store.flush();
        eventsAfterFlush = store.trace.events.length;
        await Promise.all([unresolved, deletion]);
        await store.put('after flush', 'z');
      },
      { sync: false },
    );
    const events = traced.trace.events;
    for (const index of [0, 1, 2]) {
      const at = ackAt(events, index);
      assert.ok(at >= eventsBeforeFlush && at < eventsAfterFlush, `operation ${index} acknowledged at event ${at}, not by the flush (${eventsBeforeFlush}..${eventsAfterFlush})`);
    }
    // The last write is acknowledged by the close that runWorkload does.
    assert.ok(ackAt(events, 3) > eventsAfterFlush);
    assert.deepEqual(traced.operations[2].writes, [['resolved', undefined]]);
  });

  it('records the commit that carried each write, deletes and writes resolving inside the final close() included (a delete was recorded in the next commit; found by a review)', async () => {
    traced = await runWorkload(dir, async (store: LabStore) => {
      for (let round = 0; round < 10; round++) {
        await store.put(`a${round}`, round);
        await Promise.all([store.delete(`a${round}`), store.put(`b${round}`, round), store.put(`c${round}`, round)]);
      }
      await store.put('x', 1);
      void store.delete('x');
      void store.put('y', 2);
      void store.put('z', 3);
    });
    assert.ok(assertRecordedCommits(traced) < traced.operations.length, 'some commits carried several writes');
  });

  it('records a write stream as a put of its bytes, in commit order: after the writes called between its end() and its commit', async () => {
    const bytes = Buffer.alloc(300_000);
    for (let index = 0; index < bytes.length; index++) bytes[index] = (index * 7919) >>> 5;
    let acknowledgedAtFinish = -1;
    traced = await runWorkload(dir, async (store: LabStore) => {
      await store.put('before', 1);
      const stream = store.createWriteStream('blob');
      for (let offset = 0; offset < bytes.length; offset += 70_000) {
        // The lab's copy is taken as the store takes the chunk: the caller may reuse it once its write's callback came.
        const chunk = Buffer.from(bytes.subarray(offset, offset + 70_000));
        await new Promise((resolve) => stream.write(chunk, resolve));
        chunk.fill(0);
      }
      const finished = once(stream, 'finish');
      stream.end();
      // Called after end(), committed before the stream: its last bytes are still being written.
      const between = store.put('between', 2);
      await finished;
      acknowledgedAtFinish = ackAt(store.trace.events, 2);
      await between;
      const key = Buffer.from('empty');
      const empty = store.createWriteStream(key);
      key.fill(0x21);
      await streamBytes(empty, Buffer.alloc(0), 1);
      await store.put('after', 3);
    });
    assert.deepEqual(
      traced.operations.map((operation) => operation.label),
      ['#0 put "before"', '#1 put "between"', '#2 write stream "blob"', '#3 write stream 0x656d707479', '#4 put "after"'],
    );
    const [[key, value]] = traced.operations[2].writes;
    assert.equal(key, 'blob');
    assert.ok(Buffer.isBuffer(value) && value.equals(bytes), 'the recorded value is the bytes written');
    // The key as it was when the stream was made, though the workload reused its buffer.
    assert.deepEqual(traced.operations[3].writes, [[Buffer.from('empty'), Buffer.alloc(0)]]);
    assert.ok(acknowledgedAtFinish >= 0, 'not acknowledged when the stream finished');
    assertRecordedCommits(traced);
  });

  it('acknowledges a sync: false write stream ended before a flush() by that flush, though its put was not yet in order', async () => {
    let eventsAfterFlush = -1;
    let streamIndexAtFlush: number | undefined;
    traced = await runWorkload(
      dir,
      async (store: LabStore) => {
        const stream = store.createWriteStream('blob');
        stream.write(Buffer.alloc(100_000, 1));
        stream.end();
        const flushed = store.flush();
        streamIndexAtFlush = store.operations.findIndex((operation) => operation.label.includes('write stream'));
        await flushed;
        eventsAfterFlush = store.trace.events.length;
        await store.put('after', 1);
      },
      { sync: false },
    );
    assert.equal(streamIndexAtFlush, -1, 'the stream was in order already when flush() was called: the case is not tested');
    const at = ackAt(traced.trace.events, 0);
    assert.ok(at >= 0 && at < eventsAfterFlush, `the stream was acknowledged at event ${at}, not by the flush (before ${eventsAfterFlush})`);
  });

  it("judges a write stream's bytes in crash states: none lost when recorded right, a violation when the record is wrong", async () => {
    traced = await runWorkload(dir, async (store: LabStore) => {
      for (let round = 0; round < 6; round++) {
        await streamBytes(store.createWriteStream(`blob${round % 3}`), Buffer.alloc(1_000 + round * 20_000, round + 1), 8_192);
        await store.put(`small${round}`, round);
      }
      await store.delete('blob0');
    });
    const clean = await exploreCrashStates(traced, { states: 100, seed: 7 });
    assert.deepEqual(clean.violations.slice(0, 3), []);
    // The same trace with the lab's record of one stream's bytes off by one byte.
    const recorded = traced.operations.filter((operation) => operation.label.includes('write stream "blob2"')).at(-1)!;
    const value = recorded.writes[0][1] as Buffer;
    value[value.length - 1] ^= 1;
    const wrong = await exploreCrashStates(traced, { states: 100, seed: 7 });
    console.log(`      ${wrong.violations.length} of ${wrong.states} states caught the wrong record`);
    assert.ok(wrong.violations.length > 0, "a wrong record of a stream's bytes went unnoticed");
  });

  it('marks a refused write and never acknowledges it', async () => {
    traced = await runWorkload(dir, async (store: LabStore) => {
      await store.put('fine', 1);
      await assert.rejects(store.batch([{ type: 'put', key: 'k', value: 1 }, { type: 'nonsense' as 'put', key: 'k2', value: 2 }]), { code: 'ERR_INVALID_ARG' });
      await store.put('fine too', 2);
    });
    assert.equal(traced.operations[1].refused, true);
    assert.equal(ackAt(traced.trace.events, 1), -1);
    assert.ok(ackAt(traced.trace.events, 0) >= 0 && ackAt(traced.trace.events, 2) >= 0);
  });

  it('judges crash states of a run with writes refused for their keys, which no get can read (found by a review: every state was a violation)', async () => {
    traced = await runWorkload(dir, async (store: LabStore) => {
      await store.put('a', 1);
      await assert.rejects(store.put('k'.repeat(1_100), 'x'), { code: 'ERR_KEY_TOO_LARGE' });
      await assert.rejects(store.put('\uD800', 'y'), { code: 'ERR_INVALID_ARG' });
      await store.put('b', 2);
    });
    const report = await exploreCrashStates(traced, { states: 60, seed: 7 });
    assert.deepEqual(report.violations.slice(0, 3), []);
    const damage = await exploreCorruption(traced, { trials: 60, seed: 7 });
    assert.deepEqual(damage.failures.slice(0, 3), []);
  });

  it('keeps its own copy of values and keys the workload changes afterwards', async () => {
    traced = await runWorkload(dir, async (store: LabStore) => {
      const key = Buffer.from('key');
      const value = { list: [1, 2] };
      await store.put(key, value);
      key[0] = 0x21;
      value.list.push(3);
    });
    const [[key, value]] = traced.operations[0].writes;
    assert.equal(Buffer.from(key as Uint8Array).toString(), 'key');
    assert.deepEqual(value, { list: [1, 2] });
  });

  it("copies a key of a Uint8Array subclass as the bytes the store took, whatever the subclass's own slice() makes (found by a review: a padded copy)", async () => {
    class Padded extends Uint8Array {
      constructor(...args: unknown[]) {
        if (typeof args[0] === 'number') super(args[0] + 2_000);
        else super(args[0] as ArrayLike<number>);
      }
    }
    traced = await runWorkload(dir, async (store: LabStore) => {
      await store.put(new Padded(Buffer.from('short')), 1);
    });
    assert.equal(Buffer.from(traced.operations[0].writes[0][0] as Uint8Array).toString(), 'short');
  });
});

describe('LabStore.level(): a ringstore/level database over the lab store', function () {
  this.timeout(60_000);
  let dir: string;
  let traced: TracedWorkload | undefined;

  beforeEach(() => {
    dir = mkdtempSync(`${tmpdir()}/ringstore-lab-level-`);
  });

  afterEach(() => {
    traced?.trace.close();
    traced = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  /** Puts, a batch, a sublevel, a delete, a clear(), a close and an open again, a chained batch. */
  async function levelWorkload(store: LabStore): Promise<void> {
    const db = store.level<string, unknown>({ valueEncoding: 'json' });
    await db.open();
    for (let i = 0; i < 24; i++) await db.put(`k${i % 7}`, { i, pad: 'x'.repeat(i * 13) });
    await db.batch([
      { type: 'put', key: 'a', value: 1 },
      { type: 'del', key: 'k1' },
      { type: 'put', key: 'b', value: [1, 2] },
    ]);
    await db.sublevel('s').put('x', 'y');
    await db.del('k2');
    await db.clear({ gte: 'k3', lt: 'k6' });
    await db.close();
    await db.open();
    await db.put('after', 'the open again');
    const sub = db.sublevel<string, string>('s', { valueEncoding: 'utf8' });
    await sub.open();
    await sub.batch().put('q', 'r').del('x').write();
    await db.close();
  }

  it('records its writes as the store’s own, each in the commit that carried it, and the crash states judge them', async () => {
    traced = await runWorkload(dir, levelWorkload, { encoding: 'binary' });
    // 24 puts, the batch, the sublevel's put, the delete, the clear's one batch of deletes, the put after the open, the chained batch.
    assert.equal(traced.operations.length, 30, traced.operations.map((operation) => operation.label).join('\n'));
    const clearBatch = traced.operations[27];
    assert.deepEqual(
      clearBatch.writes.map(([key, value]) => [Buffer.from(key as Uint8Array | string).toString(), value]),
      [['k3', undefined], ['k4', undefined], ['k5', undefined]],
    );
    assert.ok(assertRecordedCommits(traced) >= 29, 'every awaited write is a commit of its own');
    for (let index = 0; index < traced.operations.length; index++) assert.ok(ackAt(traced.trace.events, index) >= 0, `operation ${index} acknowledged`);
    const clean = await exploreCrashStates(traced, { states: 150, seed: 7 });
    assert.deepEqual(clean.violations.slice(0, 3), []);
    // The same trace with the lab's record of the clear left out: a recovered
    // store without k3..k5 matches no prefix of the record.
    const original = [...traced.operations];
    traced.operations.splice(27, 1);
    try {
      const wrong = await exploreCrashStates(traced, { states: 150, seed: 7 });
      assert.ok(wrong.violations.length > 0, "a level database's write left out of the record went unnoticed");
    } finally {
      traced.operations.splice(0, traced.operations.length, ...original);
    }
  });

  it('refuses a store that is not binary, store options, a second database while one holds the store, and writes it would not record', async () => {
    await assert.rejects(
      runWorkload(dir, async (store: LabStore) => {
        store.level();
      }),
      { code: 'ERR_INVALID_ARG', message: /encoding 'binary'/ },
    );
    traced = await runWorkload(
      dir,
      async (store: LabStore) => {
        assert.throws(() => store.level({ sizeBytes: 1 << 20 } as never), { code: 'ERR_INVALID_ARG', message: /'sizeBytes' is the lab store's/ });
        const db = store.level();
        await db.open();
        const second = store.level();
        await assert.rejects(second.open(), (error: Error & { cause?: { code?: string; message?: string } }) => error.cause?.code === 'LEVEL_LOCKED' && /another database holds the lab store/.test(error.cause.message ?? ''));
        await assert.rejects(db.store.clear(), { code: 'ERR_INVALID_ARG', message: /clear\(\) would write unrecorded/ });
        assert.throws(() => db.store.createOrderedWriteStream('k', () => undefined), { code: 'ERR_INVALID_ARG' });
        await db.store.put('through the store', Buffer.from('v'));
        await db.put('k', 'v');
        await db.close();
        // Closed, the store is free for another database, which opens it again.
        await second.open();
        assert.equal(await second.get('k'), 'v');
        await second.close();
      },
      { encoding: 'binary' },
    );
    assert.deepEqual(
      traced.operations.map((operation) => operation.label),
      ['#0 put "through the store"', '#1 put "k"'],
    );
  });
});
