// LabStore (tools/lab/lab_store.ts): the oracle's books. Every write call is
// recorded in call order; an acknowledgement goes to the trace when the
// write is durable by the store's promise — on resolve with sync: true, and
// with sync: false when a flush(), reopen() or close() called after it
// resolves, even if the write itself had not resolved when flush() was
// called. Refused writes are marked and never acknowledged.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

import { commitRecordCount } from '../../format/commit.js';
import { decodeFrameBlock, frameBlockPayload } from '../../format/frame.js';
import type { LabStore } from '../../tools/lab/lab_store.js';
import { runWorkload, type TracedWorkload } from '../../tools/lab/workload.js';
import type { TraceEvent } from '../../tools/lab/write_trace.js';

/** Index in the trace's events of operation `index`'s acknowledgement, or -1. */
function ackAt(events: readonly TraceEvent[], index: number): number {
  return events.findIndex((event) => event.type === 'ack' && event.operation === index);
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
    // The truth, from the WAL frames the trace holds: each commit's record count.
    const blockSize = traced.store.blockSize;
    const records = new Map<number, number>();
    for (const operation of traced.trace.operations) {
      if (operation.phase !== 'wal' || operation.length === 0) continue;
      const first = traced.trace.dataOf(operation).subarray(0, blockSize);
      const header = decodeFrameBlock('wal', first, Math.floor(operation.position / blockSize));
      if (header.blockIndex === 0) records.set(header.sequence, commitRecordCount(frameBlockPayload(first, header)));
    }
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
    assert.ok(sequences.length < traced.operations.length, 'some commits carried several writes');
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
});
