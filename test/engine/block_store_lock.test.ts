// Exclusive access: while a BlockStore has a file open, a second open of the
// same path — in this process or in another — fails with ERR_STORE_LOCKED
// and changes nothing; once the store is closed, the file opens again.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';

import { BlockStore } from '../../engine/block_store.js';
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
