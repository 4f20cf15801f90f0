// Exclusive access: while a BlockStore has a file open, a second open of the
// same path — in this process or in another — fails with ERR_STORE_LOCKED
// and changes nothing; once the store is closed, the file opens again.
import assert from 'node:assert/strict';
import { closeSync, copyFileSync, openSync, renameSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';

import { BlockStore } from '../../engine/block_store.js';
import { RingBlockDevice } from '../../engine/ring_block_device.js';
import { IoUringActor } from '../../native/io_uring_actor.js';
import { RingFile } from '../../native/ring_file.js';
import { describeChild, makeStoreDir, openSmallStore, PACKAGE_ENTRY_URL, rejectsWithCode, removeStoreDir, runNodeModule } from './helpers.js';

/** A child process that tries to open `path` and prints the outcome as JSON. */
function childOpenSource(path: string): string {
  return `
    const { BlockStore } = await import(${JSON.stringify(PACKAGE_ENTRY_URL)});
    try {
      const store = await BlockStore.open(${JSON.stringify(path)});
      const value = await store.get('owner');
      await store.close();
      process.stdout.write(JSON.stringify({ opened: true, value }));
    } catch (error) {
      process.stdout.write(JSON.stringify({ opened: false, code: error.code, message: error.message }));
    }
  `;
}

async function openInChild(path: string): Promise<{ opened: boolean; code?: string; value?: unknown }> {
  const child = await runNodeModule(childOpenSource(path));
  assert.equal(child.exitCode, 0, describeChild(child));
  return JSON.parse(child.stdout) as { opened: boolean; code?: string; value?: unknown };
}

describe('BlockStore exclusive access', () => {
  let dir: string | undefined;
  let store: BlockStore | undefined;
  const path = (): string => `${dir}/store`;

  before(async () => {
    dir = makeStoreDir();
    store = await openSmallStore(path());
    await store.put('owner', 'first store');
  });

  after(async () => {
    await store?.close();
    removeStoreDir(dir);
  });

  it('refuses a second open in the same process with ERR_STORE_LOCKED', async () => {
    await rejectsWithCode(() => BlockStore.open(path()), 'ERR_STORE_LOCKED');
    await rejectsWithCode(() => BlockStore.open(path(), { create: true, sizeBytes: 32 << 20 }), 'ERR_STORE_LOCKED');
  });

  it('leaves the file as it was when it refuses an open with create and a larger size', async () => {
    const sizeBefore = statSync(path()).size;
    await rejectsWithCode(() => BlockStore.open(path(), { create: true, sizeBytes: 64 << 20 }), 'ERR_STORE_LOCKED');
    assert.equal(statSync(path()).size, sizeBefore, 'the refused open resized the locked file');
  });

  it('leaves the first store working after refusing the second', async () => {
    await store!.put('after-refusal', 1);
    assert.equal(await store!.get('owner'), 'first store');
    assert.equal(await store!.get('after-refusal'), 1);
  });

  it('refuses an open from another process with ERR_STORE_LOCKED', async function () {
    this.timeout(30_000);
    const outcome = await openInChild(path());
    assert.deepEqual({ opened: outcome.opened, code: outcome.code }, { opened: false, code: 'ERR_STORE_LOCKED' });
  });

  it('lets this process and another open the file once the store is closed', async function () {
    this.timeout(30_000);
    await store!.close();
    store = undefined;
    const outcome = await openInChild(path());
    assert.deepEqual(outcome, { opened: true, value: 'first store' });
    store = await BlockStore.open(path());
    assert.equal(await store.get('after-refusal'), 1);
  });
});

describe('BlockStore: a lock whose holder has exited', function () {
  // A process that dies with io_uring requests in flight keeps its flock
  // until the kernel's teardown of its ring drops the file, 40–220 ms after
  // the death where measured: a supervisor restarting the store at once was
  // refused with ERR_STORE_LOCKED (found by a review: 6 of 16 deaths). Here
  // a child takes the lock and hands its descriptor to a grandchild that
  // lives on for LINGER_MS, then exits: the lock is held, and its holder is
  // dead, as in that teardown.
  this.timeout(30_000);
  const LINGER_MS = 600;
  const ADDON_URL = new URL('../../native/addon.js', import.meta.url).href;
  let dir: string | undefined;

  before(() => {
    dir = makeStoreDir();
  });

  after(() => {
    removeStoreDir(dir);
  });

  it('is waited for, and the open succeeds once it goes; one held by a live process is refused at once', async () => {
    const path = `${dir}/store`;
    const first = await openSmallStore(path);
    await first.put('owner', 'before the death');
    await first.close();
    const child = await runNodeModule(`
      import { openSync } from 'node:fs';
      import { spawn } from 'node:child_process';
      const { addon } = await import(${JSON.stringify(ADDON_URL)});
      const fd = openSync(${JSON.stringify(path)}, 'r+');
      if (addon.lockExclusive(fd) !== 0) throw new Error('the child could not lock the store');
      // The grandchild shares the locked open file, as the ring of a dead process does.
      spawn('sleep', [String(${LINGER_MS} / 1000)], { stdio: ['ignore', 'ignore', 'ignore', fd], detached: true }).unref();
    `);
    assert.equal(child.exitCode, 0, describeChild(child));
    const startedMs = performance.now();
    const reopened = await BlockStore.open(path);
    const waitedMs = performance.now() - startedMs;
    try {
      assert.equal(await reopened.get('owner'), 'before the death');
      assert.ok(waitedMs > LINGER_MS / 3, `opened after ${waitedMs.toFixed(0)} ms: the lock was not held (the test would prove nothing)`);
      // Its own lock is held by this live process: a second open is refused without waiting.
      const refusedStartedMs = performance.now();
      await rejectsWithCode(() => BlockStore.open(path), 'ERR_STORE_LOCKED');
      assert.ok(performance.now() - refusedStartedMs < LINGER_MS, 'a live holder is refused at once');
    } finally {
      await reopened.close();
    }
  });
});

describe('BlockStore: the path renamed over (or removed) between its open and its lock', () => {
  let dir: string | undefined;
  const path = (): string => `${dir}/store`;
  const originalTryLock = RingFile.prototype.tryLockExclusive;
  /** Runs once before each exclusive lock is tried, while armed: it changes what the path names. */
  let beforeLock: (() => void) | undefined;

  beforeEach(() => {
    dir = makeStoreDir();
    RingFile.prototype.tryLockExclusive = function (this: RingFile): boolean {
      beforeLock?.();
      return originalTryLock.call(this);
    };
  });

  afterEach(() => {
    RingFile.prototype.tryLockExclusive = originalTryLock;
    RingBlockDevice.prototype.grow = originalGrow;
    beforeLock = undefined;
    onGrow = undefined;
    removeStoreDir(dir);
  });

  const originalGrow = RingBlockDevice.prototype.grow;
  /**
   * What the next growth of a store file does, once: `after` it grew (the
   * file still open and locked), or `instead` of growing.
   */
  let onGrow: { after?: () => Promise<void>; instead?: () => Promise<void> } | undefined;
  /** Arms onGrow for the test that calls it (afterEach puts grow back). */
  function hookGrow(hook: NonNullable<typeof onGrow>): void {
    onGrow = hook;
    RingBlockDevice.prototype.grow = async function (this: RingBlockDevice, sizeBytes: number): Promise<void> {
      const armed = onGrow;
      onGrow = undefined;
      if (armed?.instead !== undefined) return armed.instead();
      await originalGrow.call(this, sizeBytes);
      await armed?.after?.();
    };
  }

  /** A closed store at `at` holding 'k' = `value`. */
  async function storeAt(at: string, value: string): Promise<void> {
    const store = await openSmallStore(at);
    await store.put('k', value);
    await store.close();
  }

  it('opens the store renamed over an empty file, not the empty file it first opened', async () => {
    // The race `ringstore load --create` makes: it renames its finished
    // build over an empty file at PATH. An opener with create: true that
    // locked the empty file after the rename formatted that unlinked file,
    // and every write of it vanished at close.
    await storeAt(`${dir}/build`, 'loaded');
    writeFileSync(path(), '');
    beforeLock = () => {
      beforeLock = undefined;
      renameSync(`${dir}/build`, path());
    };
    const store = await openSmallStore(path(), { create: true });
    await store.put('mine', 'acknowledged');
    await store.close();
    const reopened = await BlockStore.open(path());
    try {
      assert.equal(await reopened.get('k'), 'loaded');
      assert.equal(await reopened.get('mine'), 'acknowledged', 'a write acknowledged by the opener is not at the path');
    } finally {
      await reopened.close();
    }
  });

  it('opens the store renamed over an empty file whose publisher still holds that file locked', async () => {
    // load --create releases the empty file's lock only after its rename:
    // an opener that locked in between was refused with ERR_STORE_LOCKED
    // though the path named a store nobody held (found by a review).
    await storeAt(`${dir}/build`, 'loaded');
    writeFileSync(path(), '');
    const publisher = IoUringActor.start({ fallback: 'threads' });
    const held = await publisher.open(path(), { direct: true });
    assert.equal(held.tryLockExclusive(), true);
    try {
      beforeLock = () => {
        beforeLock = undefined;
        renameSync(`${dir}/build`, path());
      };
      const store = await BlockStore.open(path());
      try {
        assert.equal(await store.get('k'), 'loaded');
      } finally {
        await store.close();
      }
    } finally {
      await held.close();
      await publisher.close();
    }
  });

  it('leaves a store renamed over the path whole when a create in the empty file it replaced fails', async () => {
    // The failed growth cut the file back to empty by its path, which named
    // the store by then (found by a review).
    await storeAt(`${dir}/moved`, 'moved in');
    writeFileSync(path(), '');
    const sizeBefore = statSync(`${dir}/moved`).size;
    hookGrow({
      instead: async () => {
        renameSync(`${dir}/moved`, path());
        throw Object.assign(new Error('EFBIG: file too large'), { code: 'EFBIG' });
      },
    });
    await assert.rejects(() => openSmallStore(path(), { create: true }), { code: 'EFBIG' });
    assert.equal(statSync(path()).size, sizeBefore, 'the store moved in was cut');
    const store = await BlockStore.open(path());
    try {
      assert.equal(await store.get('k'), 'moved in');
    } finally {
      await store.close();
    }
  });

  it('cuts no other file, and leaves the grown file alone, when the caller closes its ring under a create in an empty file', async () => {
    // truncateToEmpty() went through a descriptor the ring had closed: the
    // number, reused by the next open, named another file, which was cut to
    // 0 bytes (found by a review). With the descriptor gone, so is the
    // file's lock: the grown file is left as it is, not cut by its path.
    writeFileSync(path(), '');
    writeFileSync(`${dir}/victim`, Buffer.alloc(1 << 20, 7));
    const ring = IoUringActor.start({ fallback: 'threads' });
    let victim: number | undefined;
    let grownBytes = 0;
    hookGrow({
      after: async () => {
        grownBytes = statSync(path()).size;
        await ring.close();
        victim = openSync(`${dir}/victim`, 'r+');
      },
    });
    try {
      await assert.rejects(() => openSmallStore(path(), { create: true, ring }));
    } finally {
      if (victim !== undefined) closeSync(victim);
    }
    assert.equal(statSync(`${dir}/victim`).size, 1 << 20, 'another file was cut');
    assert.ok(grownBytes > 0);
    assert.equal(statSync(path()).size, grownBytes);
  });

  it('leaves a store another open made in the file alone when a create whose ring was closed under it gives up (found by a review)', async () => {
    // The lock went with the closed descriptor: another store formatted and
    // opened the same file, and the giving-up create cut it by path.
    writeFileSync(path(), '');
    const ring = IoUringActor.start({ fallback: 'threads' });
    let other: BlockStore | undefined;
    let otherSizeBytes = 0;
    hookGrow({
      after: async () => {
        await ring.close();
        await BlockStore.format(path(), { sizeBytes: 16 << 20 });
        other = await BlockStore.open(path());
        await other.put('k', 'the other store');
        otherSizeBytes = statSync(path()).size;
      },
    });
    try {
      await assert.rejects(() => openSmallStore(path(), { create: true, ring }));
      assert.ok(other !== undefined, 'the other store opened');
      assert.equal(await other.get('k'), 'the other store');
      assert.ok(otherSizeBytes > 0);
      assert.equal(statSync(path()).size, otherSizeBytes, 'the other store was cut');
    } finally {
      await other?.close();
    }
    const reopened = await BlockStore.open(path());
    try {
      assert.equal(await reopened.get('k'), 'the other store');
    } finally {
      await reopened.close();
    }
  });

  it('cuts the empty file back when its caller starts closing the ring under a create (the file still open)', async () => {
    // RingFile.truncate refused with ERR_RING_CLOSED while the ring closed,
    // though the descriptor was still open (found by a review).
    writeFileSync(path(), '');
    const ring = IoUringActor.start({ fallback: 'threads' });
    const held = await ring.open(`${dir}/held`, { create: true });
    let closing: Promise<void> | undefined;
    hookGrow({
      after: async () => {
        closing = ring.close();
      },
    });
    try {
      await assert.rejects(() => openSmallStore(path(), { create: true, ring }));
    } finally {
      await closing;
    }
    assert.equal(held.closed, true);
    assert.equal(statSync(path()).size, 0, 'the empty file was left grown');
  });

  it('says ERR_STORE_PATH for a path that cannot name a file (ELOOP, ENAMETOOLONG, ENOTDIR), with or without create', async () => {
    // A stat made for the EROFS hint replaced the open's error with a raw one (found by a review).
    symlinkSync(`${dir}/loop`, `${dir}/loop`);
    writeFileSync(`${dir}/a-file`, 'x');
    for (const bad of [`${dir}/loop`, `${dir}/${'n'.repeat(300)}`, `${dir}/a-file/below`]) {
      for (const create of [false, true]) await rejectsWithCode(() => BlockStore.open(bad, { create }), 'ERR_STORE_PATH');
    }
  });

  it('refuses a store removed before the lock with ERR_STORE_NOT_FOUND instead of opening the unlinked file', async () => {
    await storeAt(path(), 'removed');
    beforeLock = () => {
      beforeLock = undefined;
      unlinkSync(path());
    };
    await rejectsWithCode(() => BlockStore.open(path()), 'ERR_STORE_NOT_FOUND');
  });

  it('gives up with ERR_STORE_LOCKED when the path is replaced at every try', async () => {
    await storeAt(`${dir}/template`, 'template');
    copyFileSync(`${dir}/template`, path());
    let replacements = 0;
    beforeLock = () => {
      replacements++;
      copyFileSync(`${dir}/template`, `${dir}/next`);
      renameSync(`${dir}/next`, path());
    };
    const refusal = await rejectsWithCode(() => BlockStore.open(path()), 'ERR_STORE_LOCKED');
    assert.match(refusal.message, /replaced by another file 4 times/);
    assert.equal(replacements, 4);
    beforeLock = undefined;
    const store = await BlockStore.open(path());
    assert.equal(await store.get('k'), 'template');
    await store.close();
  });
});
