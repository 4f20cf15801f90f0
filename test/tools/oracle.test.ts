// The crash oracle (tools/lab/oracle.ts): a recovered store must equal the
// state after some prefix of commit order that holds every acknowledged
// operation; refused operations are never part of it. Behaviour by behaviour,
// then a property over random operation lists.
import assert from 'node:assert/strict';

import fc from 'fast-check';

import type { Key } from '../../engine/key_codec.js';
import { isRefusedKey, judgeRecovered, keyId, sameValue, touchedKeys, type WorkloadOperation, type WorkloadWrite } from '../../tools/lab/oracle.js';

/** Fixed so a failure reproduces; fast-check prints it (and the path) on failure. */
const SEED = Number(process.env.RINGSTORE_ORACLE_SEED ?? 20261127);
const RUNS = Number(process.env.RINGSTORE_ORACLE_RUNS ?? 500);

function put(key: Key, value: unknown, refused = false): WorkloadOperation {
  return { label: `put ${String(key)}`, writes: [[key, value]], refused };
}

function del(key: Key): WorkloadOperation {
  return { label: `delete ${String(key)}`, writes: [[key, undefined]] };
}

function batch(...writes: WorkloadWrite[]): WorkloadOperation {
  return { label: `batch of ${writes.length}`, writes };
}

/** The store's contents after the first `count` operations (refused ones skipped), for every touched key. */
function stateAfter(operations: readonly WorkloadOperation[], count: number): Map<string, unknown> {
  const state = new Map<string, unknown>();
  for (const id of touchedKeys(operations).keys()) state.set(id, undefined);
  for (const operation of operations.slice(0, count)) {
    if (operation.refused) continue;
    for (const [key, value] of operation.writes) state.set(keyId(key), value);
  }
  return state;
}

/** The observed contents: every touched key, with `values` (by string key) and nothing elsewhere. */
function observed(operations: readonly WorkloadOperation[], values: Record<string, unknown>): Map<string, unknown> {
  const state = new Map<string, unknown>();
  for (const id of touchedKeys(operations).keys()) state.set(id, undefined);
  for (const [key, value] of Object.entries(values)) {
    assert.ok(state.has(keyId(key)), `test bug: ${key} is not a touched key`);
    state.set(keyId(key), value);
  }
  return state;
}

function acks(...indexes: number[]): Set<number> {
  return new Set(indexes);
}

describe('oracle: judgeRecovered()', () => {
  it('accepts the state after every prefix that holds the acknowledged operations, and no shorter one', () => {
    const operations = [put('a', 'a1'), put('b', 'b1'), put('c', 'c1'), put('a', 'a2')];
    for (let count = 0; count <= operations.length; count++) {
      const verdict = judgeRecovered(operations, acks(0, 1), stateAfter(operations, count));
      if (count >= 2) assert.equal(verdict, undefined, `prefix of ${count}`);
      else assert.ok(verdict !== undefined, `prefix of ${count} lacks an acknowledged put`);
    }
  });

  it('rejects a lost acknowledged put and names the key and the operation that wrote it', () => {
    const operations = [put('a', 'a1'), put('b', 'b1')];
    const verdict = judgeRecovered(operations, acks(0), observed(operations, {}));
    assert.ok(verdict !== undefined);
    assert.match(verdict, /matches no prefix of commit order that holds all 1 acknowledged operations/);
    assert.match(verdict, /a: expected "a1" from put a \(acknowledged\), found nothing/);
  });

  it('takes a later acknowledgement to cover every earlier operation, acknowledged or not', () => {
    // Operation 0 was never acknowledged itself, but 1 was: commit order
    // puts 0 before it, so 0 must be there too.
    const operations = [put('a', 'a1'), put('b', 'b1')];
    assert.ok(judgeRecovered(operations, acks(1), observed(operations, { b: 'b1' })) !== undefined);
    assert.equal(judgeRecovered(operations, acks(1), observed(operations, { a: 'a1', b: 'b1' })), undefined);
  });

  it('rejects a batch that is half visible, and accepts it whole or absent', () => {
    const operations = [put('x', 'x1'), batch(['a', 'a1'], ['b', 'b1'])];
    assert.ok(judgeRecovered(operations, acks(0), observed(operations, { x: 'x1', a: 'a1' })) !== undefined);
    assert.ok(judgeRecovered(operations, acks(0), observed(operations, { x: 'x1', b: 'b1' })) !== undefined);
    assert.equal(judgeRecovered(operations, acks(0), observed(operations, { x: 'x1', a: 'a1', b: 'b1' })), undefined);
    assert.equal(judgeRecovered(operations, acks(0), observed(operations, { x: 'x1' })), undefined);
  });

  it('rejects a later un-acknowledged write that is visible while an earlier one is missing (not a prefix)', () => {
    const operations = [put('a', 'a1'), put('b', 'b1'), put('c', 'c1')];
    const verdict = judgeRecovered(operations, acks(0), observed(operations, { a: 'a1', c: 'c1' }));
    assert.ok(verdict !== undefined);
    assert.match(verdict, /matches no prefix/);
    assert.equal(judgeRecovered(operations, acks(0), observed(operations, { a: 'a1', b: 'b1' })), undefined);
  });

  it('rejects a rollback of an acknowledged key to an older value, and accepts a newer un-acknowledged one', () => {
    const operations = [put('a', 'a1'), put('a', 'a2'), put('a', 'a3')];
    assert.ok(judgeRecovered(operations, acks(0, 1), observed(operations, { a: 'a1' })) !== undefined);
    assert.equal(judgeRecovered(operations, acks(0, 1), observed(operations, { a: 'a2' })), undefined);
    assert.equal(judgeRecovered(operations, acks(0, 1), observed(operations, { a: 'a3' })), undefined);
    assert.ok(judgeRecovered(operations, acks(0, 1), observed(operations, {})) !== undefined);
  });

  it('handles deletes: an acknowledged delete must hold, an un-acknowledged one may or may not', () => {
    const operations = [put('a', 'a1'), del('a'), put('b', 'b1'), del('b')];
    // Acknowledged through the delete of a.
    assert.equal(judgeRecovered(operations, acks(0, 1), observed(operations, {})), undefined);
    assert.ok(judgeRecovered(operations, acks(0, 1), observed(operations, { a: 'a1' })) !== undefined);
    // The put of b acknowledged, its delete not: both states are prefixes.
    assert.equal(judgeRecovered(operations, acks(0, 1, 2), observed(operations, { b: 'b1' })), undefined);
    assert.equal(judgeRecovered(operations, acks(0, 1, 2), observed(operations, {})), undefined);
    // A deleted key coming back after a later acknowledged operation is a rollback.
    assert.ok(judgeRecovered(operations, acks(3), observed(operations, { b: 'b1' })) !== undefined);
  });

  it('never counts a refused operation: its write is never accepted, and it needs not be there', () => {
    const operations = [put('a', 'a1', true), put('b', 'b1'), put('b', 'b2', true)];
    assert.equal(judgeRecovered(operations, acks(1), observed(operations, { b: 'b1' })), undefined);
    assert.ok(judgeRecovered(operations, acks(1), observed(operations, { a: 'a1', b: 'b1' })) !== undefined);
    assert.ok(judgeRecovered(operations, acks(1), observed(operations, { b: 'b2' })) !== undefined);
    // A refused batch is refused whole.
    const refusedBatch = [put('x', 'x1'), { ...batch(['a', 'a1'], ['b', 'b1']), refused: true }];
    assert.equal(judgeRecovered(refusedBatch, acks(0), observed(refusedBatch, { x: 'x1' })), undefined);
    assert.ok(judgeRecovered(refusedBatch, acks(0), observed(refusedBatch, { x: 'x1', a: 'a1', b: 'b1' })) !== undefined);
  });

  it('takes a string key and its UTF-8 bytes for one key, as the store does (it kept them apart: a workload writing one key both ways failed)', () => {
    const bytes = new TextEncoder().encode('k');
    const operations = [put('k', 'from string'), put(bytes, 'from bytes')];
    // After both puts the key holds the second value, however it is read.
    assert.equal(judgeRecovered(operations, acks(0, 1), new Map([[keyId('k'), 'from bytes']])), undefined);
    assert.equal(judgeRecovered(operations, acks(0), new Map([[keyId(bytes), 'from string']])), undefined);
    assert.ok(judgeRecovered(operations, acks(0, 1), new Map([[keyId(bytes), 'from string']])) !== undefined);
  });

  it('accepts an empty workload only with an empty store', () => {
    assert.equal(judgeRecovered([], acks(), new Map()), undefined);
    assert.ok(judgeRecovered([], acks(), new Map([[keyId('ghost'), 'boo']])) !== undefined);
  });
});

describe('oracle: keyId() and touchedKeys()', () => {
  it('gives a string key and its UTF-8 bytes one id, and bytes that are no UTF-8 an id no string has', () => {
    assert.equal(keyId('ab'), keyId(Buffer.from('ab')));
    assert.equal(keyId('é☃'), keyId(Buffer.from('é☃')));
    const notText = Buffer.from([0x61, 0xff]);
    assert.notEqual(keyId(notText), keyId('a\uFFFD'));
    // Nor can a string that spells the hex of some bytes collide with them.
    assert.notEqual(keyId('b61ff'), keyId(notText));
    assert.notEqual(keyId('61ff'), keyId(notText));
  });

  it('gives equal bytes the same id whatever their view: Buffer, Uint8Array, or a subarray at an offset', () => {
    const backing = new Uint8Array([0xff, 0x61, 0x62, 0xff]);
    assert.equal(keyId(backing.subarray(1, 3)), keyId(Buffer.from('ab')));
    assert.equal(keyId(new Uint8Array([0x61, 0x62])), keyId(Buffer.from('ab')));
    assert.notEqual(keyId(backing.subarray(1, 3)), keyId(backing.subarray(1, 4)));
  });

  it('lists every key written by any operation once, refused ones included, keeping the key itself', () => {
    const bytes = Buffer.from([0xff, 0x61]);
    const keys = touchedKeys([put('a', 1), batch(['b', 2], ['a', 3]), del('c'), put(bytes, 4, true), put('a', 5)]);
    assert.deepEqual([...keys.keys()].sort(), [keyId('a'), keyId('b'), keyId('c'), keyId(bytes)].sort());
    assert.equal(keys.get(keyId(bytes)), bytes);
    assert.equal(keys.get(keyId('b')), 'b');
    // One key written as a string and as its bytes is listed once.
    assert.equal(touchedKeys([put('a', 1), put(Buffer.from('a'), 2)]).size, 1);
    // A write of no key at all (refused by the store) is listed, under an id no key has (it threw; found by a review).
    const noKeys = touchedKeys([put(null as unknown as string, 1, true), put(5 as unknown as string, 2, true), put('a', 3)]);
    assert.equal(noKeys.size, 3);
    assert.ok(isRefusedKey(noKeys.get(keyId(null as unknown as string))!));
  });
});

describe('oracle: sameValue()', () => {
  it('compares strings by content and never equals a string to bytes', () => {
    assert.equal(sameValue('abc', 'abc'), true);
    assert.equal(sameValue('abc', 'abd'), false);
    assert.equal(sameValue('abc', Buffer.from('abc')), false);
    assert.equal(sameValue(Buffer.from('abc'), 'abc'), false);
  });

  it('treats absence (undefined) as a value of its own', () => {
    assert.equal(sameValue(undefined, undefined), true);
    assert.equal(sameValue(undefined, ''), false);
    assert.equal(sameValue('', undefined), false);
    assert.equal(sameValue(undefined, null), false);
    assert.equal(sameValue(null, undefined), false);
  });

  it('compares bytes by content: a Buffer equals a Uint8Array (or a view at an offset) with the same bytes', () => {
    const backing = new Uint8Array([9, 1, 2, 3, 9]);
    assert.equal(sameValue(Buffer.from([1, 2, 3]), new Uint8Array([1, 2, 3])), true);
    assert.equal(sameValue(new Uint8Array([1, 2, 3]), Buffer.from([1, 2, 3])), true);
    assert.equal(sameValue(Buffer.from([1, 2, 3]), backing.subarray(1, 4)), true);
    assert.equal(sameValue(Buffer.from([1, 2, 3]), new Uint8Array([1, 2, 4])), false);
    assert.equal(sameValue(Buffer.from([1, 2, 3]), new Uint8Array([1, 2])), false);
    assert.equal(sameValue(new Uint8Array(0), Buffer.alloc(0)), true);
  });

  it('compares Maps by entries, in any insertion order', () => {
    assert.equal(sameValue(new Map([['a', 1], ['b', 2]]), new Map([['b', 2], ['a', 1]])), true);
    assert.equal(sameValue(new Map([['a', 1]]), new Map([['a', 2]])), false);
    assert.equal(sameValue(new Map([['a', 1]]), new Map([['a', 1], ['b', 2]])), false);
  });

  it('compares nested objects by structure, bytes inside them by content', () => {
    const stored = { id: 7, tags: ['x', 'y'], blob: Buffer.from('hi'), inner: { map: new Map([['k', Buffer.from([1])]]) } };
    const decoded = { id: 7, tags: ['x', 'y'], blob: new Uint8Array([0x68, 0x69]), inner: { map: new Map([['k', new Uint8Array([1])]]) } };
    assert.equal(sameValue(stored, decoded), true);
    assert.equal(sameValue(stored, { ...decoded, tags: ['x'] }), false);
    assert.equal(sameValue(stored, { ...decoded, blob: new Uint8Array([0x68, 0x6a]) }), false);
    assert.equal(sameValue(stored, { ...decoded, inner: { map: new Map([['k', new Uint8Array([2])]]) } }), false);
    assert.equal(sameValue({ a: 1 }, { a: 1, b: undefined }), false);
    assert.equal(sameValue([1, 2], [2, 1]), false);
    assert.equal(sameValue(12, 12), true);
    assert.equal(sameValue(12, 13), false);
  });
});

// ---- Property: random workloads over a few keys. ----

const KEYS: readonly Key[] = ['a', 'b', 'c', Buffer.from('a'), Buffer.from('b')];

interface Plan {
  /** Each operation: its writes as [key index, value or undefined], and whether it was refused. */
  operations: { writes: [number, boolean][]; refused: boolean }[];
  acknowledgedFraction: number;
  actualFraction: number;
  victim: number;
}

const writeArb = fc.tuple(fc.integer({ min: 0, max: KEYS.length - 1 }), fc.boolean());
const planArb: fc.Arbitrary<Plan> = fc.record({
  operations: fc.array(
    fc.record({
      writes: fc.oneof(
        { weight: 3, arbitrary: fc.tuple(writeArb).map((write) => [write[0]]) },
        { weight: 1, arbitrary: fc.array(writeArb, { minLength: 1, maxLength: 4 }) },
      ),
      // About one operation in five is refused.
      refused: fc.integer({ min: 0, max: 4 }).map((roll) => roll === 0),
    }),
    { maxLength: 20 },
  ),
  acknowledgedFraction: fc.double({ min: 0, max: 1, noNaN: true }),
  actualFraction: fc.double({ min: 0, max: 1, noNaN: true }),
  victim: fc.nat(),
});

/**
 * Builds the operations of a plan: every written value is unique (its
 * operation and position), bytes for byte keys and strings for string keys.
 * A write flagged false is a delete.
 */
function operationsOf(plan: Plan): WorkloadOperation[] {
  return plan.operations.map((operation, index) => ({
    label: `op ${index}`,
    refused: operation.refused,
    writes: operation.writes.map(([keyIndex, isPut], position): WorkloadWrite => {
      const key = KEYS[keyIndex];
      const value = `v${index}.${position}`;
      return [key, isPut ? (typeof key === 'string' ? value : Buffer.from(value)) : undefined];
    }),
  }));
}

/** The state after the first `count` operations, as a store would give it back (bytes as plain Uint8Array copies). */
function recoveredAfter(operations: readonly WorkloadOperation[], count: number): Map<string, unknown> {
  const state = stateAfter(operations, count);
  for (const [id, value] of state) if (value instanceof Uint8Array) state.set(id, new Uint8Array(value));
  return state;
}

describe('oracle: judgeRecovered() on random workloads (fast-check)', () => {
  function prefixes(plan: Plan, operations: readonly WorkloadOperation[]): { acknowledged: Set<number>; actual: number } {
    const acknowledgedCount = Math.floor(plan.acknowledgedFraction * (operations.length + 0.999));
    const actual = acknowledgedCount + Math.floor(plan.actualFraction * (operations.length - acknowledgedCount + 0.999));
    const acknowledged = new Set<number>();
    // A refused operation is never acknowledged.
    for (let index = 0; index < acknowledgedCount; index++) if (!operations[index].refused) acknowledged.add(index);
    return { acknowledged, actual: Math.min(actual, operations.length) };
  }

  it(`accepts the state after any prefix k >= the acknowledged prefix a (seed ${SEED}, ${RUNS} runs)`, () => {
    fc.assert(
      fc.property(planArb, (plan) => {
        const operations = operationsOf(plan);
        const { acknowledged, actual } = prefixes(plan, operations);
        const verdict = judgeRecovered(operations, acknowledged, recoveredAfter(operations, actual));
        assert.equal(verdict, undefined, `prefix of ${actual} with ${acknowledged.size} acknowledged`);
      }),
      { seed: SEED, numRuns: RUNS, verbose: 1 },
    );
  });

  it(`rejects that state with one key changed to a value never written (seed ${SEED}, ${RUNS} runs)`, () => {
    fc.assert(
      fc.property(planArb, (plan) => {
        const operations = operationsOf(plan);
        const { acknowledged, actual } = prefixes(plan, operations);
        const state = recoveredAfter(operations, actual);
        // Every key of the workload may be the victim, touched or not (an
        // untouched one is added to what the store shows).
        const victim = KEYS[plan.victim % KEYS.length];
        state.set(keyId(victim), typeof victim === 'string' ? 'never written' : Buffer.from('never written'));
        const verdict = judgeRecovered(operations, acknowledged, state);
        assert.ok(verdict !== undefined, `a value never written at ${keyId(victim)} was accepted`);
        assert.match(verdict, /matches no prefix of commit order/);
      }),
      { seed: SEED, numRuns: RUNS, verbose: 1 },
    );
  });
});
