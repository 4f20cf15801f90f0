// IoUringActor.start(): options are checked before any thread or ring is
// created, and every configuration the checks admit actually works.
import assert from 'node:assert/strict';

import { AUTO_SPIN_WINDOW_US, DEFAULT_COMPLETION_SPIN_US, DEFAULT_ENTRIES, DEFAULT_SPIN_US, IoUringActor, type IoUringActorOptions } from '../../index.js';
import { constants } from '../../native/addon.js';
import { CHILD_DIR_SOURCE, describeChild, PACKAGE_ENTRY_URL, runNodeModule, throwsWith } from './helpers.js';

describe('IoUringActor.start()', () => {
  it('starts an io_uring actor with a positive id by default', async () => {
    const ring = IoUringActor.start();
    try {
      assert.equal(ring.backend, 'io_uring');
      assert.ok(Number.isInteger(ring.id) && ring.id > 0);
      assert.equal(ring.closed, false);
    } finally {
      await ring.close();
    }
  });

  it('gives each actor its own id', async () => {
    const rings = [IoUringActor.start(), IoUringActor.start({ backend: 'threads' }), IoUringActor.start()];
    try {
      assert.equal(new Set(rings.map((ring) => ring.id)).size, rings.length);
    } finally {
      await Promise.all(rings.map((ring) => ring.close()));
    }
  });

  it('documents sane defaults', () => {
    assert.ok(DEFAULT_ENTRIES >= constants.RING_ENTRIES_MIN && DEFAULT_ENTRIES <= constants.RING_ENTRIES_MAX);
    assert.equal(DEFAULT_SPIN_US, 'auto');
    assert.equal(DEFAULT_COMPLETION_SPIN_US, 'auto');
    assert.ok(AUTO_SPIN_WINDOW_US > 0 && AUTO_SPIN_WINDOW_US <= constants.SPIN_US_MAX);
  });

  it('adapts the spins by default and keeps a fixed window fixed', async () => {
    const byDefault = IoUringActor.start();
    const fixed = IoUringActor.start({ spinUs: 20, completionSpinUs: 0 });
    const explicitAuto = IoUringActor.start({ spinUs: 'auto', completionSpinUs: 'auto' });
    try {
      for (const ring of [byDefault, explicitAuto]) {
        const { actorSpin, completionSpin } = ring.stats();
        assert.equal(actorSpin.adaptive, true);
        assert.equal(completionSpin.adaptive, true);
        // Before any measurement 'auto' does not spin: the choice that costs no CPU.
        assert.equal(actorSpin.spinning, false);
        assert.equal(completionSpin.spinning, false);
      }
      const { actorSpin, completionSpin } = fixed.stats();
      assert.deepEqual(actorSpin, { adaptive: false, spinning: true, probeCount: 0, spinWinCount: 0 });
      assert.deepEqual(completionSpin, { adaptive: false, spinning: false, probeCount: 0, spinWinCount: 0 });
    } finally {
      await Promise.all([byDefault.close(), fixed.close(), explicitAuto.close()]);
    }
  });

  it('rejects a spin setting that is neither a number nor \'auto\' with TypeError ERR_INVALID_ARG', async () => {
    for (const name of ['spinUs', 'completionSpinUs']) {
      for (const value of ['AUTO', 'adaptive', '']) {
        throwsWith(() => IoUringActor.start({ [name]: value } as unknown as IoUringActorOptions), TypeError, 'ERR_INVALID_ARG');
      }
    }
    const ring = IoUringActor.start();
    try {
      throwsWith(() => IoUringActor.attach(ring.id, { completionSpinUs: 'Auto' as unknown as number }), TypeError, 'ERR_INVALID_ARG');
      const attached = IoUringActor.attach(ring.id, { completionSpinUs: 'auto' });
      assert.equal(attached.stats().completionSpin.adaptive, true);
      await attached.close();
    } finally {
      await ring.close();
    }
  });

  it('rejects options that are not an object with TypeError ERR_INVALID_ARG', () => {
    for (const options of [null, 'threads', 42, true]) {
      throwsWith(() => IoUringActor.start(options as unknown as IoUringActorOptions), TypeError, 'ERR_INVALID_ARG');
    }
  });

  it('rejects numeric options of another type with TypeError ERR_INVALID_ARG', () => {
    for (const name of ['entries', 'batchSize', 'spinUs', 'completionSpinUs', 'threadCount']) {
      for (const value of ['8', {}, true]) {
        throwsWith(() => IoUringActor.start({ [name]: value }), TypeError, 'ERR_INVALID_ARG');
      }
    }
  });

  const outOfRange: [keyof IoUringActorOptions, number][] = [
    ['entries', 0],
    ['entries', constants.RING_ENTRIES_MIN - 1],
    ['entries', constants.RING_ENTRIES_MAX + 1],
    ['entries', 8.5],
    ['entries', Number.NaN],
    ['batchSize', 0],
    ['batchSize', constants.RING_ENTRIES_MAX + 1],
    ['spinUs', -1],
    ['spinUs', constants.SPIN_US_MAX + 1],
    ['spinUs', 0.5],
    ['completionSpinUs', -1],
    ['completionSpinUs', constants.SPIN_US_MAX + 1],
    ['threadCount', 0],
    ['threadCount', constants.THREAD_COUNT_MAX + 1],
  ];
  for (const [name, value] of outOfRange) {
    it(`rejects ${name}: ${value} with RangeError ERR_INVALID_ARG`, () => {
      throwsWith(() => IoUringActor.start({ [name]: value }), RangeError, 'ERR_INVALID_ARG');
    });
  }

  it('rejects an unknown backend or fallback with RangeError ERR_INVALID_ARG', () => {
    for (const options of [{ backend: 'aio' }, { backend: 'IO_URING' }, { fallback: 'sync' }, { fallback: true }]) {
      throwsWith(() => IoUringActor.start(options as unknown as IoUringActorOptions), RangeError, 'ERR_INVALID_ARG');
    }
  });

  // Each admitted extreme must do IO, including the linked write+fdatasync
  // that needs two SQEs. In child processes: a configuration that hangs
  // would otherwise hold mocha's event loop open for good.
  const extremes: [string, IoUringActorOptions][] = [
    ['the smallest ring (entries: RING_ENTRIES_MIN)', { entries: constants.RING_ENTRIES_MIN }],
    ['a ring the kernel rounds up (entries: RING_ENTRIES_MIN + 1)', { entries: constants.RING_ENTRIES_MIN + 1 }],
    ['the largest ring (entries: RING_ENTRIES_MAX)', { entries: constants.RING_ENTRIES_MAX }],
    ['batches of one (batchSize: 1)', { batchSize: 1 }],
    ['no spinning (spinUs: 0, completionSpinUs: 0)', { spinUs: 0, completionSpinUs: 0 }],
    ['adaptive spinning (spinUs and completionSpinUs: \'auto\')', { spinUs: 'auto', completionSpinUs: 'auto' }],
    ['the thread pool with adaptive completion spin', { backend: 'threads', spinUs: 'auto', completionSpinUs: 'auto' }],
    [
      'the longest spins (spinUs and completionSpinUs: SPIN_US_MAX)',
      { spinUs: constants.SPIN_US_MAX, completionSpinUs: constants.SPIN_US_MAX },
    ],
    ['one pool thread (threads backend, threadCount: 1)', { backend: 'threads', threadCount: 1 }],
    ['the thread pool without completion spin (completionSpinUs: 0)', { backend: 'threads', completionSpinUs: 0 }],
    [
      'the most pool threads (threads backend, threadCount: THREAD_COUNT_MAX)',
      { backend: 'threads', threadCount: constants.THREAD_COUNT_MAX },
    ],
  ];
  for (const [name, options] of extremes) {
    it(`does every kind of IO with ${name}`, async () => {
      const source = `
        const { IoUringActor, allocAligned } = await import(${JSON.stringify(PACKAGE_ENTRY_URL)});
        const dir = ${CHILD_DIR_SOURCE};
        const ring = IoUringActor.start(${JSON.stringify(options)});
        const file = await ring.open(dir + '/file', { create: true, direct: true });
        const block = allocAligned(4096).fill(7);
        const steps = [
          ['write', () => file.write(block, 0)],
          ['concurrent writes', () => Promise.all(Array.from({ length: 64 }, (_, i) => file.write(block, i * 4096)))],
          ['writev', () => file.writev([block, block], 0)],
          ['read', () => file.read(allocAligned(4096), 0)],
          ['readv', () => file.readv([allocAligned(4096)], 0)],
          ['datasync', () => file.datasync()],
          ['sync', () => file.sync()],
          ['trim', () => file.trim(0, 4096)],
          ['writeAndSync', () => file.writeAndSync(block, 0)],
          ['concurrent writeAndSync', () => Promise.all(Array.from({ length: 16 }, (_, i) => file.writeAndSync(block, i * 4096)))],
        ];
        for (const [name, step] of steps) {
          console.log('start ' + name);
          await step();
          console.log('done ' + name);
        }
        await ring.close();
        console.log('ok');
      `;
      const result = await runNodeModule(source, { timeoutMs: 5_000 });
      assert.ok(result.exitCode === 0 && result.stdout.trim().endsWith('ok'), describeChild(result));
    });
  }
});
