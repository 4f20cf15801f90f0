// NativeRingClient, the addon's own boundary (native/ring_client*.cc,
// native/js_args.cc, native/actor_join.cc): the TS layer checks every
// argument first, but the addon must never trust JS. Here the addon is called
// directly, past RingFile and IoUringActor, with what the TS layer would have
// refused: every call must throw a coded TypeError/RangeError (or RingError
// code) and leave the client usable — no slot taken, nothing sent to the
// actor — and nothing may crash the process.
import assert from 'node:assert/strict';
import { closeSync, openSync } from 'node:fs';

import { addon, constants, type NativeActorSpec, type NativeRingClient } from '../../native/addon.js';
import { makeTempDir, removeTempDir, throwsWith } from './helpers.js';

const SPEC: NativeActorSpec = { backend: 'threads', entries: 8, batchSize: 4, spinUs: 0, threadCount: 1, shortTransferEvery: 0 };
const SLOT_COUNT = constants.CLIENT_SLOT_COUNT;

function completionView(): Int32Array {
  return new Int32Array(SLOT_COUNT * constants.COMPLETION_WORDS);
}

/** Values that are not integers a kernel call could take as an fd, offset or length. */
const NOT_NON_NEGATIVE_INTEGERS: readonly [string, number][] = [
  ['-1', -1],
  ['1.5', 1.5],
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
];

describe('new NativeRingClient() bad input', () => {
  it('rejects a missing callback or completion view with TypeError ERR_INVALID_ARG', () => {
    const construct = addon.NativeRingClient as unknown as new (...args: unknown[]) => NativeRingClient;
    throwsWith(() => new construct(SPEC), TypeError, 'ERR_INVALID_ARG');
    throwsWith(() => new construct(SPEC, 'not a function', completionView()), TypeError, 'ERR_INVALID_ARG');
    throwsWith(() => new construct(SPEC, () => {}, new Uint32Array(SLOT_COUNT * constants.COMPLETION_WORDS)), TypeError, 'ERR_INVALID_ARG');
  });

  it('rejects a completion view shorter than CLIENT_SLOT_COUNT completions with RangeError ERR_INVALID_ARG', () => {
    const view = new Int32Array(SLOT_COUNT * constants.COMPLETION_WORDS - 1);
    throwsWith(() => new addon.NativeRingClient(SPEC, () => {}, view, { completionSpinUs: 0 }), RangeError, 'ERR_INVALID_ARG');
  });

  it('rejects an actorSpec that is neither an id nor an object with TypeError ERR_INVALID_ARG', () => {
    const spec = 'io_uring' as unknown as NativeActorSpec;
    throwsWith(() => new addon.NativeRingClient(spec, () => {}, completionView(), { completionSpinUs: 0 }), TypeError, 'ERR_INVALID_ARG');
  });

  for (const id of [0, 1.5, -1, 2 ** 32, Number.NaN]) {
    it(`rejects ring id ${id} with RangeError ERR_INVALID_ARG`, () => {
      throwsWith(() => new addon.NativeRingClient(id, () => {}, completionView(), { completionSpinUs: 0 }), RangeError, 'ERR_INVALID_ARG');
    });
  }

  it('rejects the id of no open ring with ERR_RING_NOT_FOUND', () => {
    throwsWith(() => new addon.NativeRingClient(0xffffffff, () => {}, completionView(), { completionSpinUs: 0 }), Error, 'ERR_RING_NOT_FOUND');
  });

  const badOptions: [string, Partial<Record<keyof NativeActorSpec, unknown>>, ErrorConstructor][] = [
    ['entries below RING_ENTRIES_MIN', { entries: constants.RING_ENTRIES_MIN - 1 }, RangeError],
    ['entries above RING_ENTRIES_MAX', { entries: constants.RING_ENTRIES_MAX + 1 }, RangeError],
    ['fractional entries', { entries: 8.5 }, RangeError],
    ['entries that are no number', { entries: '8' }, TypeError],
    ['batchSize 0', { batchSize: 0 }, RangeError],
    ['spinUs above SPIN_US_MAX', { spinUs: constants.SPIN_US_MAX + 1 }, RangeError],
    ['threadCount 0', { threadCount: 0 }, RangeError],
    ['threadCount above THREAD_COUNT_MAX', { threadCount: constants.THREAD_COUNT_MAX + 1 }, RangeError],
    ['a negative shortTransferEvery', { shortTransferEvery: -1 }, RangeError],
    ['an unknown backend', { backend: 'aio' }, RangeError],
  ];
  for (const [name, options, type] of badOptions) {
    it(`rejects ${name} with ${type.name} ERR_INVALID_ARG before starting an actor`, () => {
      const spec = { ...SPEC, ...options } as NativeActorSpec;
      throwsWith(() => new addon.NativeRingClient(spec, () => {}, completionView(), { completionSpinUs: 0 }), type, 'ERR_INVALID_ARG');
    });
  }

  it('rejects a completionSpinUs above SPIN_US_MAX with RangeError ERR_INVALID_ARG', () => {
    const options = { completionSpinUs: constants.SPIN_US_MAX + 1 };
    throwsWith(() => new addon.NativeRingClient(SPEC, () => {}, completionView(), options), RangeError, 'ERR_INVALID_ARG');
  });
});

describe('NativeRingClient#submit(), #submitVector(), #submitRange() bad input', () => {
  let dir: string | undefined;
  let fd = -1;
  let client: NativeRingClient | undefined;
  const delivered: { slot: number; result: number }[] = [];
  let wake: (() => void) | undefined;

  before(() => {
    dir = makeTempDir();
    fd = openSync(`${dir}/file`, 'w+');
    const view = completionView();
    const words = constants.COMPLETION_WORDS;
    const onCompletions = (count: number): void => {
      for (let i = 0; i < count; i++) delivered.push({ slot: view[i * words], result: view[i * words + 1] });
      wake?.();
    };
    client = new addon.NativeRingClient(SPEC, onCompletions, view, { completionSpinUs: 0 });
  });

  after(() => {
    client?.close(); // idempotent: the last test closed it already
    if (fd >= 0) closeSync(fd);
    removeTempDir(dir);
  });

  const buffer = (): Buffer => Buffer.alloc(512);

  it('rejects (slot, kind, fd, offset) that are not numbers with TypeError ERR_INVALID_ARG', () => {
    const submit = client!.submit.bind(client) as unknown as (...args: unknown[]) => void;
    throwsWith(() => submit('0', constants.OP_WRITE, fd, 0, buffer(), 0), TypeError, 'ERR_INVALID_ARG');
    throwsWith(() => submit(0, constants.OP_WRITE, String(fd), 0, buffer(), 0), TypeError, 'ERR_INVALID_ARG');
    throwsWith(() => submit(0, constants.OP_WRITE, fd, undefined, buffer(), 0), TypeError, 'ERR_INVALID_ARG');
  });

  it('rejects a slot outside CLIENT_SLOT_COUNT with RangeError ERR_INVALID_ARG', () => {
    throwsWith(() => client!.submit(SLOT_COUNT, constants.OP_WRITE, fd, 0, buffer(), 0), RangeError, 'ERR_INVALID_ARG');
  });

  it('rejects an operation kind that does not fit the entry point with RangeError ERR_INVALID_ARG', () => {
    throwsWith(() => client!.submit(0, constants.OP_FSYNC, fd, 0, buffer(), 0), RangeError, 'ERR_INVALID_ARG');
    throwsWith(() => client!.submit(0, constants.OP_WRITEV, fd, 0, buffer(), 0), RangeError, 'ERR_INVALID_ARG');
    throwsWith(() => client!.submitVector(0, constants.OP_WRITE, fd, 0, [buffer()], 0), RangeError, 'ERR_INVALID_ARG');
    throwsWith(() => client!.submitRange(0, constants.OP_READ, fd, 0, 0), RangeError, 'ERR_INVALID_ARG');
    throwsWith(() => client!.submitRange(0, 99, fd, 0, 0), RangeError, 'ERR_INVALID_ARG');
  });

  for (const [name, value] of [...NOT_NON_NEGATIVE_INTEGERS, ['2^31', 2 ** 31] as [string, number]]) {
    it(`rejects fd ${name} with RangeError ERR_INVALID_ARG`, () => {
      throwsWith(() => client!.submit(0, constants.OP_WRITE, value, 0, buffer(), 0), RangeError, 'ERR_INVALID_ARG');
    });
  }

  for (const [name, value] of [...NOT_NON_NEGATIVE_INTEGERS, ['2^53', 2 ** 53] as [string, number]]) {
    it(`rejects position ${name} with RangeError ERR_INVALID_ARG`, () => {
      throwsWith(() => client!.submit(0, constants.OP_WRITE, fd, value, buffer(), 0), RangeError, 'ERR_INVALID_ARG');
    });
    it(`rejects range length ${name} with RangeError ERR_INVALID_ARG`, () => {
      throwsWith(() => client!.submitRange(0, constants.OP_PUNCH_HOLE, fd, 0, value), RangeError, 'ERR_INVALID_ARG');
    });
  }

  it('rejects a buffer that is no view, empty or detached with TypeError ERR_INVALID_ARG', () => {
    const detached = new Uint8Array(512);
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    for (const bad of [new ArrayBuffer(512), 'bytes', Buffer.alloc(0), detached]) {
      throwsWith(() => client!.submit(0, constants.OP_WRITE, fd, 0, bad as ArrayBufferView, 0), TypeError, 'ERR_INVALID_ARG');
      throwsWith(() => client!.submitVector(0, constants.OP_WRITEV, fd, 0, [buffer(), bad as ArrayBufferView], 0), TypeError, 'ERR_INVALID_ARG');
    }
  });

  for (const alignment of [3, 2 ** 21, -512, Number.NaN]) {
    it(`rejects directAlignment ${alignment} with RangeError ERR_INVALID_ARG`, () => {
      throwsWith(() => client!.submit(0, constants.OP_WRITE, fd, 0, buffer(), alignment), RangeError, 'ERR_INVALID_ARG');
      throwsWith(() => client!.submitVector(0, constants.OP_WRITEV, fd, 0, [buffer()], alignment), RangeError, 'ERR_INVALID_ARG');
    });
  }

  it('rejects a buffer list that is no array, empty, or longer than IOV_COUNT_MAX', () => {
    const submitVector = client!.submitVector.bind(client) as unknown as (...args: unknown[]) => void;
    throwsWith(() => submitVector(0, constants.OP_WRITEV, fd, 0, buffer(), 0), TypeError, 'ERR_INVALID_ARG');
    throwsWith(() => client!.submitVector(0, constants.OP_WRITEV, fd, 0, [], 0), RangeError, 'ERR_INVALID_ARG');
    const tooMany = Array.from({ length: constants.IOV_COUNT_MAX + 1 }, () => Buffer.alloc(1));
    throwsWith(() => client!.submitVector(0, constants.OP_WRITEV, fd, 0, tooMany, 0), RangeError, 'ERR_INVALID_ARG');
  });

  it('rejects holdWakes() without a boolean with TypeError ERR_INVALID_ARG', () => {
    const holdWakes = client!.holdWakes.bind(client) as unknown as (...args: unknown[]) => void;
    for (const bad of [[], [1], ['true'], [null]]) throwsWith(() => holdWakes(...bad), TypeError, 'ERR_INVALID_ARG');
  });

  it('left every slot free and sent nothing to the actor: a valid write then completes in slot 0', async () => {
    assert.equal(client!.stats().submitted, 0);
    const done = new Promise<void>((resolve) => {
      wake = resolve;
    });
    client!.submit(0, constants.OP_WRITE, fd, 0, buffer(), 0);
    throwsWith(() => client!.submit(0, constants.OP_WRITE, fd, 0, buffer(), 0), RangeError, 'ERR_INVALID_ARG');
    await done;
    assert.deepEqual(delivered, [{ slot: 0, result: 512 }]);
  });

  it('rejects every call after close() with ERR_RING_CLOSED', () => {
    client!.close();
    throwsWith(() => client!.submit(0, constants.OP_WRITE, fd, 0, buffer(), 0), Error, 'ERR_RING_CLOSED');
    throwsWith(() => client!.submitRange(0, constants.OP_FSYNC, fd, 0, 0), Error, 'ERR_RING_CLOSED');
    throwsWith(() => client!.stats(), Error, 'ERR_RING_CLOSED');
  });

  it('takes holdWakes(false) after close() (a release may follow the close of the delivery it ends)', () => {
    client!.holdWakes(true);
    client!.holdWakes(false);
  });
});
