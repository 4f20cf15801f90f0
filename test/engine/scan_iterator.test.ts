// ScanIterator (engine/scan_iterator.ts) over a fake source: the async
// generator's contract without being one — the begin step on the first
// next(), entries in order across runs (also with next() called many times
// at once, and with extent values read in between), the limit, and every
// way to end (run out, limit, return(), throw(), an error) ending the read
// epoch and the cursor once.
import assert from 'node:assert/strict';

import { ScanIterator, type ScanShape, type ScanSource } from '../../engine/scan_iterator.js';
import type { CheckedRange } from '../../engine/store_arguments.js';
import type { IndexEntry } from '../../engine/store_index.js';
import type { LeafRun } from '../../engine/tree_cursor.js';
import { EPOCH_NEVER, newLeaf } from '../../engine/tree_node.js';
import type { ExtentValue } from '../../format/records.js';

const keyOf = (index: number): string => `k${String(index).padStart(3, '0')}`;
/** Every fifth entry an extent value (read through the source), the others inline. */
const isExtent = (index: number): boolean => index % 5 === 4;
const EXTENT = { length: 1, crc: 0, extents: [{ startBlock: 1, blockCount: 1 }] } as unknown as ExtentValue;

/** Runs of `perRun` entries over `count` keys; records what the iterator asked of it. */
class FakeSource implements ScanSource {
  readonly events: string[] = [];
  open = true;
  /** The run whose fetch fails, and the key whose extent read fails (none: undefined). */
  failRun: number | undefined;
  failExtentKey: string | undefined;
  readonly #runs: LeafRun[] = [];

  constructor(count: number, perRun: number) {
    for (let first = 0; first < count; first += perRun) {
      const indexes = Array.from({ length: Math.min(perRun, count - first) }, (_, i) => first + i);
      const entries: IndexEntry[] = indexes.map((index) => ({ isString: true, value: isExtent(index) ? EXTENT : Uint8Array.of(index & 0xff, index >> 8) }));
      const leaf = newLeaf(EPOCH_NEVER, indexes.map(keyOf), entries, 0);
      this.#runs.push({ leaf, first: 0, end: indexes.length, step: 1 });
    }
  }

  checkOpen(): void {
    if (!this.open) throw Object.assign(new Error('closed'), { code: 'ERR_STORE_CLOSED' });
  }

  start(): { runs: AsyncIterator<LeafRun, void, undefined>; epoch: number } {
    this.events.push('start');
    const runs = this.#runs;
    const events = this.events;
    let next = 0;
    return {
      epoch: 7,
      runs: {
        next: async () => {
          await new Promise((resolve) => setImmediate(resolve));
          if (next === this.failRun) throw new Error(`run ${next} unreadable`);
          return next < runs.length ? { value: runs[next++]!, done: false } : { value: undefined, done: true };
        },
        return: async () => {
          events.push('runs.return');
          return { value: undefined, done: true };
        },
      },
    };
  }

  endRead(epoch: number): void {
    this.events.push(`endRead ${epoch}`);
  }

  decodeInline(keyString: string, _entry: IndexEntry, bytes: Uint8Array): unknown {
    return `${keyString}=${bytes[0]! + (bytes[1]! << 8)}`;
  }

  decodeInlineAt(): unknown {
    // Its runs' leaves are arrays: the iterator asks decodeInline() for them.
    throw new Error('FakeSource: decodeInlineAt() is for leaves in page form');
  }

  async readExtentValue(keyString: string): Promise<unknown> {
    await new Promise((resolve) => setTimeout(resolve, 1));
    if (keyString === this.failExtentKey) throw new Error(`${keyString} unreadable`);
    this.events.push(`read ${keyString}`);
    return `${keyString}=extent`;
  }
}

const range = (limit = Infinity): CheckedRange => ({ limit }) as unknown as CheckedRange;
const begin = (shape: ScanShape, limit = Infinity) => async () => ({ range: range(limit), shape });
const expected = (index: number): string => `${keyOf(index)}=${isExtent(index) ? 'extent' : index}`;

async function drain(iterator: AsyncIterator<unknown>): Promise<unknown[]> {
  const values: unknown[] = [];
  for (;;) {
    const result = await iterator.next();
    if (result.done === true) return values;
    values.push(result.value);
  }
}

describe('ScanIterator', () => {
  it('hands out every entry in order across runs, extent values read in place, then ends the epoch and the cursor once', async () => {
    const source = new FakeSource(53, 8);
    const iterator = new ScanIterator(source, begin('entries'));
    const entries = await drain(iterator);
    assert.deepEqual(
      entries,
      Array.from({ length: 53 }, (_, index) => [keyOf(index), expected(index)]),
    );
    const ends = (): string[] => source.events.filter((event) => !event.startsWith('read '));
    assert.deepEqual(ends(), ['start', 'runs.return', 'endRead 7']);
    assert.deepEqual(await iterator.next(), { value: undefined, done: true });
    assert.deepEqual(ends(), ['start', 'runs.return', 'endRead 7'], 'ended twice');
  });

  it('answers next() calls made all at once in call order, also across runs and extent reads', async () => {
    const source = new FakeSource(30, 4);
    const iterator = new ScanIterator(source, begin('values'));
    const results = await Promise.all(Array.from({ length: 33 }, () => iterator.next()));
    assert.deepEqual(
      results.map((result) => result.value),
      [...Array.from({ length: 30 }, (_, index) => expected(index)), undefined, undefined, undefined],
    );
    assert.deepEqual(
      results.map((result) => result.done),
      [...Array.from({ length: 30 }, () => false), true, true, true],
    );
  });

  it('runs the begin step on the first next(), not before; its error ends the iteration', async () => {
    const source = new FakeSource(10, 4);
    let begun = 0;
    const failing = new ScanIterator(source, async () => {
      begun++;
      throw Object.assign(new Error('bad range'), { code: 'ERR_INVALID_ARG' });
    });
    assert.equal(begun, 0);
    await assert.rejects(failing.next(), /bad range/);
    assert.equal(begun, 1);
    assert.deepEqual(await failing.next(), { value: undefined, done: true });
    assert.deepEqual(source.events, [], 'a failed begin started a scan');
  });

  it('ends at the limit without another next(): the epoch and the cursor are given back at once', async () => {
    const source = new FakeSource(40, 6);
    const iterator = new ScanIterator(source, begin('keys', 1));
    assert.deepEqual(await iterator.next(), { value: keyOf(0), done: false });
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(source.events, ['start', 'runs.return', 'endRead 7']);
    assert.deepEqual(await iterator.next(), { value: undefined, done: true });
  });

  it('keeps call order when a next() comes while one queued behind an extent read has not started', async () => {
    const source = new FakeSource(40, 10);
    const iterator = new ScanIterator(source, begin('values'));
    for (let index = 0; index < 4; index++) assert.equal((await iterator.next()).value, expected(index));
    const reading = iterator.next(); // index 4: an extent value, read
    const queued = iterator.next();
    await reading;
    const after = iterator.next();
    assert.equal((await queued).value, expected(5));
    assert.equal((await after).value, expected(6));
  });

  it('lets an extent read in progress finish before return() ends the epoch', async () => {
    const source = new FakeSource(40, 10);
    const iterator = new ScanIterator(source, begin('values'));
    for (let index = 0; index < 4; index++) await iterator.next();
    const reading = iterator.next();
    const returned = iterator.return(undefined);
    assert.equal((await reading).value, expected(4));
    assert.deepEqual(await returned, { value: undefined, done: true });
    assert.deepEqual(source.events, ['start', `read ${keyOf(4)}`, 'runs.return', 'endRead 7']);
  });

  it('ends with the error of a run that cannot be read, or of an extent value that cannot', async () => {
    const runFails = new FakeSource(40, 6);
    runFails.failRun = 2;
    await assert.rejects(drain(new ScanIterator(runFails, begin('keys'))), /run 2 unreadable/);
    assert.deepEqual(runFails.events, ['start', 'runs.return', 'endRead 7']);
    const extentFails = new FakeSource(40, 6);
    extentFails.failExtentKey = keyOf(9);
    const iterator = new ScanIterator(extentFails, begin('entries'));
    await assert.rejects(drain(iterator), new RegExp(`${keyOf(9)} unreadable`));
    assert.deepEqual(extentFails.events, ['start', `read ${keyOf(4)}`, 'runs.return', 'endRead 7']);
    assert.deepEqual(await iterator.next(), { value: undefined, done: true });
  });

  it('ends at return() or throw() before the first next() without running the begin step', async () => {
    let begun = 0;
    const counting = async (): Promise<{ range: CheckedRange; shape: ScanShape }> => {
      begun++;
      return { range: range(), shape: 'keys' };
    };
    const returned = new ScanIterator(new FakeSource(10, 4), counting);
    assert.deepEqual(await returned.return(undefined), { value: undefined, done: true });
    assert.deepEqual(await returned.next(), { value: undefined, done: true });
    const thrown = new ScanIterator(new FakeSource(10, 4), counting);
    await assert.rejects(thrown.throw(new Error('not wanted')), /not wanted/);
    assert.deepEqual(await thrown.next(), { value: undefined, done: true });
    assert.equal(begun, 0);
  });

  it('stops at the limit: keys only, and [key, undefined] without values', async () => {
    const keys = await drain(new ScanIterator(new FakeSource(40, 6), begin('keys', 13)));
    assert.deepEqual(keys, Array.from({ length: 13 }, (_, index) => keyOf(index)));
    const source = new FakeSource(40, 6);
    const pairs = await drain(new ScanIterator(source, begin('entriesWithoutValues', 7)));
    assert.deepEqual(pairs, Array.from({ length: 7 }, (_, index) => [keyOf(index), undefined]));
    assert.deepEqual(source.events, ['start', 'runs.return', 'endRead 7']);
    assert.deepEqual(await drain(new ScanIterator(new FakeSource(40, 6), begin('keys', 0))), []);
  });

  it('ends on return() in the middle, after the next() called before it, and answers done after', async () => {
    const source = new FakeSource(40, 6);
    const iterator = new ScanIterator(source, begin('values'));
    assert.equal((await iterator.next()).value, expected(0));
    const pending = iterator.next();
    const returned = iterator.return(undefined);
    assert.equal((await pending).value, expected(1));
    assert.deepEqual(await returned, { value: undefined, done: true });
    assert.deepEqual(source.events, ['start', 'runs.return', 'endRead 7']);
    assert.deepEqual(await iterator.next(), { value: undefined, done: true });
  });

  it('rejects throw() with its error and ends', async () => {
    const source = new FakeSource(40, 6);
    const iterator = new ScanIterator(source, begin('values'));
    await iterator.next();
    await assert.rejects(iterator.throw(new Error('stop here')), /stop here/);
    assert.deepEqual(source.events, ['start', 'runs.return', 'endRead 7']);
    assert.deepEqual(await iterator.next(), { value: undefined, done: true });
  });

  it('ends with the error when the store closes in the middle (an entry made synchronously throws)', async () => {
    const source = new FakeSource(40, 6);
    const iterator = new ScanIterator(source, begin('keys'));
    await iterator.next();
    await iterator.next();
    source.open = false;
    await assert.rejects(iterator.next(), (error: unknown) => (error as { code?: string }).code === 'ERR_STORE_CLOSED');
    assert.deepEqual(source.events, ['start', 'runs.return', 'endRead 7']);
    source.open = true;
    assert.deepEqual(await iterator.next(), { value: undefined, done: true });
  });

  it('is its own async iterator, for for-await', async () => {
    const iterator = new ScanIterator(new FakeSource(9, 2), begin('keys'));
    assert.equal(iterator[Symbol.asyncIterator](), iterator);
    const keys: unknown[] = [];
    for await (const key of iterator) keys.push(key);
    assert.deepEqual(keys, Array.from({ length: 9 }, (_, index) => keyOf(index)));
  });
});
