// BlockStore.backup(): a copy of a live store in a new store file
// (engine/store_backup.ts, docs/store.md "Backups"). The copy must hold
// every entry in its stored form (raw values raw, the encoding and block
// size recorded), one moment of the store (writes acknowledged before the
// call in it, batches made during it whole or absent), and a backup that
// fails must leave nothing at its path — no store that opens and lacks
// entries, no temporary file.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, promises as fsPromises, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { finished } from 'node:stream/promises';

import { BlockStore } from '../../engine/block_store.js';
import { addon } from '../../native/addon.js';
import { IoUringActor } from '../../native/io_uring_actor.js';
import type { RingFile } from '../../native/ring_file.js';
import { BACKUP_BATCH_ENTRIES_MAX } from '../../engine/store_backup.js';
import { collect, flipByteInFile, rejectsCorrupt, rejectsWith, rejectsWithCode, storeDirPerTest } from './helpers.js';

const BLOCK_SIZE = 8192;
/** More than a few of the backup's batches, so that writes and a close can land while it runs. */
const LIVE_KEY_COUNT = 20 * BACKUP_BATCH_ENTRIES_MAX;
/** Keys each writer's batch overwrites together: the backup must hold them all at one version. */
const PAIR_KEYS = ['pair-a', 'pair-b', 'pair-c'];
const RAW_VALUE_BYTES = (5 << 20) / 2;
const EXTENT_VALUE_CHARS = 200_000;
/** A marker that starts a value, to find its bytes in the store file. */
const MARKER = 'ringstore-backup-test-marker-7f3a';

/** A rejection as fs.promises or the addon gives one: `syscall` failed with `code`. */
function systemFailure(code: string, errno: number, syscall: string): () => Promise<never> {
  return () => Promise.reject(Object.assign(new Error(`${code}: ${syscall} failed`), { code, errno, syscall }));
}

/**
 * Until the returned function is called: fs.promises.link refused with
 * EPERM (a file system without hard links, where a publish renames over a
 * claim) and, with `renameFails`, rename failing with EIO. The store's
 * ESM imports see it (syncBuiltinESMExports).
 */
function withoutHardLinks(renameFails = false): () => void {
  const { link, rename } = fsPromises;
  fsPromises.link = systemFailure('EPERM', -1, 'link');
  if (renameFails) fsPromises.rename = systemFailure('EIO', -5, 'rename');
  syncBuiltinESMExports();
  return () => {
    fsPromises.link = link;
    fsPromises.rename = rename;
    syncBuiltinESMExports();
  };
}

/** Until the returned function is called: every directory flush fails with EIO, after `before` (if given) has run. */
function failDirectoryFlushes(before?: () => Promise<void>): () => void {
  const syncDirectory = addon.syncDirectory;
  const fail = systemFailure('EIO', -5, 'fsync');
  addon.syncDirectory = async () => {
    await before?.();
    return fail();
  };
  return () => {
    addon.syncDirectory = syncDirectory;
  };
}

/** Until the returned function is called: the IO layer's opens of `target` go through `meddle`, which calls `open` to open it. */
function aroundOpenOf(target: string, meddle: (open: () => Promise<RingFile>) => Promise<RingFile>): () => void {
  const open = IoUringActor.prototype.open;
  IoUringActor.prototype.open = function (this: IoUringActor, path: string, options?: Parameters<IoUringActor['open']>[1]) {
    return path === target ? meddle(() => open.call(this, path, options)) : open.call(this, path, options);
  } as IoUringActor['open'];
  return () => {
    IoUringActor.prototype.open = open;
  };
}

describe('BlockStore.backup', function () {
  this.timeout(120_000);
  const dir = storeDirPerTest();

  /** Names in the directory other than the ones given: a backup leaves no temporary file. */
  const others = (...known: string[]): string[] => readdirSync(dir()).filter((name) => !known.includes(name));

  async function fillLive(store: BlockStore, count: number): Promise<void> {
    for (let start = 0; start < count; start += BACKUP_BATCH_ENTRIES_MAX) {
      const operations = [];
      for (let index = start; index < Math.min(count, start + BACKUP_BATCH_ENTRIES_MAX); index++) operations.push({ type: 'put' as const, key: `live-${String(index).padStart(6, '0')}`, value: { index } });
      await store.batch(operations);
    }
  }

  it('copies every entry in its stored form, with the encoding and block size recorded', async () => {
    const source = await BlockStore.open(`${dir()}/source.rs`, { create: true, blockSize: BLOCK_SIZE, encoding: 'json' });
    const binaryKey = Uint8Array.of(0xff, 0x00, 0x80, 0x41);
    await source.batch([
      { type: 'put', key: 'small', value: { a: 1, b: [true, null, 'x'] } },
      { type: 'put', key: 'empty string', value: '' },
      { type: 'put', key: 'ключ ✓', value: 'non-ASCII key' },
      { type: 'put', key: binaryKey, value: 42 },
      { type: 'put', key: 'extent', value: 'e'.repeat(EXTENT_VALUE_CHARS) },
      { type: 'put', key: 'deleted', value: 'gone before the backup' },
    ]);
    await source.delete('deleted');
    const raw = Buffer.alloc(RAW_VALUE_BYTES);
    for (let index = 0; index < raw.length; index++) raw[index] = (index * 31) & 0xff;
    const stream = source.createWriteStream('raw');
    stream.end(raw);
    await finished(stream);
    await fillLive(source, 3000);

    const report = await source.backup(`${dir()}/copy.rs`);
    assert.deepEqual(others('source.rs', 'copy.rs'), [], 'no temporary file is left');
    assert.equal(report.path, `${dir()}/copy.rs`);
    assert.equal(report.entries, 3006);
    assert.equal(report.sizeBytes, statSync(`${dir()}/copy.rs`).size);

    const copy = await BlockStore.open(`${dir()}/copy.rs`);
    try {
      assert.equal(copy.recordedEncoding, 'json');
      assert.equal(copy.blockSize, BLOCK_SIZE);
      assert.deepEqual(await collect(copy.range()), await collect(source.range()));
      assert.deepEqual(await copy.get(binaryKey), 42);
      assert.equal(await copy.get('deleted'), undefined);
      // Raw stays raw: a Buffer under a json encoding, byte for byte.
      const copied = await copy.get('raw');
      assert.ok(Buffer.isBuffer(copied));
      assert.ok(raw.equals(copied as Buffer));
      assert.equal((await copy.verifyIntegrity()).keys, 3006);
    } finally {
      await copy.close();
      await source.close();
    }
  });

  it('holds one moment: every write acknowledged before the call, each batch made during it whole or not at all', async () => {
    const source = await BlockStore.open(`${dir()}/source.rs`, { create: true });
    await fillLive(source, LIVE_KEY_COUNT);
    let version = 0;
    let acknowledged = 0;
    let stop = false;
    const writer = (async () => {
      while (!stop) {
        const next = ++version;
        await source.batch([...PAIR_KEYS.map((key) => ({ type: 'put' as const, key, value: next })), { type: 'put', key: `new-${String(next).padStart(6, '0')}`, value: next }]);
        acknowledged = next;
      }
    })();
    // Let some batches land first.
    while (acknowledged < 5) await new Promise((resolve) => setTimeout(resolve, 1));
    const acknowledgedBeforeCall = acknowledged;
    const backup = source.backup(`${dir()}/copy.rs`);
    await backup;
    stop = true;
    await writer;
    const writtenDuring = version - acknowledgedBeforeCall;

    const copy = await BlockStore.open(`${dir()}/copy.rs`);
    try {
      const held = (await copy.get(PAIR_KEYS[0])) as number;
      assert.ok(held >= acknowledgedBeforeCall, `the copy holds version ${held}, but ${acknowledgedBeforeCall} was acknowledged before the call`);
      for (const key of PAIR_KEYS) assert.equal(await copy.get(key), held, `${key} is of another batch than ${PAIR_KEYS[0]}`);
      const newKeys = await collect(copy.keys({ prefix: 'new-' }));
      assert.deepEqual(newKeys, Array.from({ length: held }, (_, index) => `new-${String(index + 1).padStart(6, '0')}`));
      assert.equal(await copy.count({ prefix: 'live-' }), LIVE_KEY_COUNT);
      // Not a test of the moment if nothing was written while the copy ran.
      assert.ok(writtenDuring > 0, 'no batch was written while the backup ran');
    } finally {
      await copy.close();
      await source.close();
    }
  });

  it('refuses a path that exists, and leaves it as it was', async () => {
    const source = await BlockStore.open(`${dir()}/source.rs`, { create: true });
    await source.put('k', 'v');
    writeFileSync(`${dir()}/file`, 'not to be replaced');
    mkdirSync(`${dir()}/directory`);
    symlinkSync(`${dir()}/missing`, `${dir()}/dangling`);
    try {
      for (const name of ['file', 'directory', 'dangling', 'source.rs']) {
        const error = await rejectsWithCode(() => source.backup(`${dir()}/${name}`), 'ERR_STORE_PATH');
        assert.match(error.message, /exists/);
      }
      assert.equal(readFileSync(`${dir()}/file`, 'utf8'), 'not to be replaced');
      assert.equal(existsSync(`${dir()}/missing`), false);
      await rejectsWithCode(() => source.backup(`${dir()}/no-such-directory/copy.rs`), 'ERR_STORE_PATH');
      await rejectsWithCode(() => source.backup(`${dir()}/copy.rs/`), 'ERR_STORE_PATH');
      // Names no file can have: refused by the look-up, before any copying,
      // with the path the caller gave (not the temporary file's).
      const nul = await rejectsWithCode(() => source.backup(`${dir()}/a\0b.rs`), 'ERR_STORE_PATH');
      assert.doesNotMatch(nul.message, /partial/);
      const long = await rejectsWithCode(() => source.backup(`${dir()}/${'n'.repeat(300)}.rs`), 'ERR_STORE_PATH');
      assert.match(long.message, /look the name up: ENAMETOOLONG/);
      for (const path of ['', 42, undefined, null]) await rejectsWith(() => source.backup(path as string), TypeError, 'ERR_INVALID_ARG');
      await rejectsWith(() => (source.backup as (path: string, options: object) => Promise<unknown>).call(source, `${dir()}/copy.rs`, {}), TypeError, 'ERR_INVALID_ARG');
      assert.deepEqual(others('source.rs', 'file', 'directory', 'dangling').sort(), []);
    } finally {
      await source.close();
    }
    await rejectsWithCode(() => source.backup(`${dir()}/copy.rs`), 'ERR_STORE_CLOSED');
  });

  it('a backup cut short by the store\'s close leaves nothing behind', async () => {
    const source = await BlockStore.open(`${dir()}/source.rs`, { create: true });
    await fillLive(source, LIVE_KEY_COUNT);
    const backup = source.backup(`${dir()}/copy.rs`);
    // It rejects during the close below, before rejectsWithCode looks at it.
    backup.catch(() => undefined);
    // Once the copy is under way: its temporary file is there.
    while (others('source.rs').length === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    await source.close();
    await rejectsWithCode(() => backup, 'ERR_STORE_CLOSED');
    assert.deepEqual(others('source.rs'), []);
  });

  it('a damaged value fails the backup with ERR_STORE_CORRUPT and leaves nothing behind', async () => {
    const path = `${dir()}/source.rs`;
    const source = await BlockStore.open(path, { create: true, encoding: 'binary' });
    await source.put('before', Buffer.from('fine'));
    await source.put('damaged', Buffer.concat([Buffer.from(MARKER), Buffer.alloc(1 << 20, 0x5a)]));
    await source.put('after', Buffer.from('fine too'));
    await source.close();
    const at = readFileSync(path).indexOf(MARKER);
    assert.ok(at > 0, 'the value is in the file');
    flipByteInFile(path, at + MARKER.length + 1000);
    const reopened = await BlockStore.open(path);
    try {
      await rejectsCorrupt(() => reopened.backup(`${dir()}/copy.rs`), 'data');
      assert.deepEqual(others('source.rs'), []);
    } finally {
      await reopened.close();
    }
  });

  it('a read-only handle backs up, beside another reader', async () => {
    const path = `${dir()}/source.rs`;
    const writer = await BlockStore.open(path, { create: true });
    await fillLive(writer, 2500);
    await writer.close();
    const reader = await BlockStore.open(path, { readOnly: true });
    const other = await BlockStore.open(path, { readOnly: true });
    try {
      const report = await reader.backup(`${dir()}/copy.rs`);
      assert.equal(report.entries, 2500);
      const copy = await BlockStore.open(`${dir()}/copy.rs`);
      assert.deepEqual(await collect(copy.range()), await collect(other.range()));
      await copy.close();
    } finally {
      await reader.close();
      await other.close();
    }
  });

  it('a failure once the copy has its name (the directory flush) takes the name back', async () => {
    const source = await BlockStore.open(`${dir()}/source.rs`, { create: true });
    await fillLive(source, 1000);
    const restore = failDirectoryFlushes();
    try {
      await rejectsWith(() => source.backup(`${dir()}/copy.rs`), Error, 'EIO');
      assert.deepEqual(others('source.rs'), []);
    } finally {
      restore();
    }
    // The name is free for the next try.
    assert.equal((await source.backup(`${dir()}/copy.rs`)).entries, 1000);
    await source.close();
  });

  it('without hard links, a rename that fails leaves nothing at the path', async () => {
    const source = await BlockStore.open(`${dir()}/source.rs`, { create: true });
    await fillLive(source, 1000);
    let restore = withoutHardLinks(true);
    try {
      await rejectsWith(() => source.backup(`${dir()}/copy.rs`), Error, 'EIO');
      assert.deepEqual(others('source.rs'), []);
      // Renamed into place once rename works (still no hard links).
      restore();
      restore = withoutHardLinks();
      assert.equal((await source.backup(`${dir()}/copy.rs`)).entries, 1000);
      assert.deepEqual(others('source.rs', 'copy.rs'), []);
    } finally {
      restore();
      await source.close();
    }
  });

  it('without hard links, never renames over (or removes) a store another creator made in its claim', async () => {
    // The claim is a new empty file, made and then locked: another
    // BlockStore.open(create) may make the name first, take the empty
    // claim's lock first, or format a store in it and close it before our
    // lock (found by reviews: renamed over, or removed). Each is a lost race.
    const source = await BlockStore.open(`${dir()}/source.rs`, { create: true });
    await source.put('s', 'source');
    const target = `${dir()}/copy.rs`;
    const otherCreates = async (keepOpen: boolean): Promise<BlockStore | undefined> => {
      const other = await BlockStore.open(target, { create: true });
      await other.put('mine', 'the other creator\'s');
      if (keepOpen) return other;
      await other.close();
      return undefined;
    };
    try {
      for (const when of ['before the claim', 'holding the claim\'s lock', 'in the claim, closed before its lock'] as const) {
        for (const renameFails of [false, true]) {
          const restoreLinks = withoutHardLinks(renameFails);
          let meddled = false;
          let held: BlockStore | undefined;
          const restoreOpen = aroundOpenOf(target, async (open) => {
            if (meddled) return open();
            meddled = true;
            if (when === 'before the claim') await otherCreates(false);
            const file = await open();
            if (when !== 'before the claim') held = await otherCreates(when === 'holding the claim\'s lock');
            return file;
          });
          try {
            await rejectsWithCode(() => source.backup(target), 'ERR_STORE_PATH');
            assert.ok(meddled, 'the other creator ran');
          } finally {
            restoreOpen();
            restoreLinks();
          }
          await held?.close();
          const other = await BlockStore.open(target);
          assert.equal(await other.get('mine'), 'the other creator\'s', `${when}, renameFails ${renameFails}`);
          await other.close();
          assert.deepEqual(others('source.rs', 'copy.rs'), []);
          rmSync(target);
        }
      }
    } finally {
      await source.close();
    }
  });

  it('without hard links, an empty file made at the path before the claim is left as it was', async () => {
    const source = await BlockStore.open(`${dir()}/source.rs`, { create: true });
    await source.put('s', 'source');
    const target = `${dir()}/copy.rs`;
    const restoreLinks = withoutHardLinks();
    const restoreOpen = aroundOpenOf(target, (open) => {
      if (!existsSync(target)) writeFileSync(target, '');
      return open();
    });
    try {
      const error = await rejectsWithCode(() => source.backup(target), 'ERR_STORE_PATH');
      assert.match(error.message, /by someone else/);
      assert.equal(statSync(target).size, 0, 'their empty file is left as it was');
      assert.deepEqual(others('source.rs', 'copy.rs'), []);
    } finally {
      restoreOpen();
      restoreLinks();
      await source.close();
    }
  });

  it('without hard links, a directory gone when the claim is made is a path error, not a lost race', async () => {
    const source = await BlockStore.open(`${dir()}/source.rs`, { create: true });
    await source.put('s', 'source');
    mkdirSync(`${dir()}/sub`);
    const target = `${dir()}/sub/copy.rs`;
    const restoreLinks = withoutHardLinks();
    const restoreOpen = aroundOpenOf(target, (open) => {
      renameSync(`${dir()}/sub`, `${dir()}/moved`);
      return open();
    });
    try {
      const error = await rejectsWithCode(() => source.backup(target), 'ERR_STORE_PATH');
      assert.match(error.message, /cannot create the new store file: its directory does not exist$/);
    } finally {
      restoreOpen();
      restoreLinks();
      await source.close();
    }
  });

  it('a failed directory flush leaves the copy at the path when a store has it open already', async () => {
    // Once named, the copy is a store anyone may open: removed then, that
    // opener's writes would go to a file without a name (found by a review).
    const source = await BlockStore.open(`${dir()}/source.rs`, { create: true });
    await source.put('s', 'source');
    const target = `${dir()}/copy.rs`;
    let opener: BlockStore | undefined;
    const restore = failDirectoryFlushes(async () => {
      opener ??= await BlockStore.open(target);
      await opener.put('mine', 'acknowledged');
    });
    try {
      const error = await rejectsWith(() => source.backup(target), Error, 'EIO');
      assert.match(error.message, /left there: it is open elsewhere/);
    } finally {
      restore();
    }
    assert.ok(opener !== undefined, 'a store opened the copy before the flush');
    await opener.close();
    const reopened = await BlockStore.open(target);
    assert.equal(await reopened.get('mine'), 'acknowledged');
    assert.equal(await reopened.get('s'), 'source');
    await reopened.close();
    await source.close();
  });

  it('a failed directory flush says nothing of a copy that is gone when its name is taken back', async () => {
    const source = await BlockStore.open(`${dir()}/source.rs`, { create: true });
    await source.put('s', 'source');
    const target = `${dir()}/copy.rs`;
    const restoreFlushes = failDirectoryFlushes();
    // The only open of the copy's name: the lock taken to remove it; someone removes it first.
    const restoreOpen = aroundOpenOf(target, (open) => {
      rmSync(target, { force: true });
      return open();
    });
    try {
      const error = await rejectsWith(() => source.backup(target), Error, 'EIO');
      assert.doesNotMatch(error.message, /left there/);
      assert.deepEqual(others('source.rs'), []);
    } finally {
      restoreOpen();
      restoreFlushes();
      await source.close();
    }
  });

  it('never replaces a file made at the path while it runs', async () => {
    const source = await BlockStore.open(`${dir()}/source.rs`, { create: true });
    await fillLive(source, LIVE_KEY_COUNT);
    const backup = source.backup(`${dir()}/copy.rs`);
    // Made after the backup looked (its temporary file is there), before it publishes.
    while (others('source.rs').length === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    writeFileSync(`${dir()}/copy.rs`, 'made meanwhile');
    try {
      await rejectsWithCode(() => backup, 'ERR_STORE_PATH');
      assert.equal(readFileSync(`${dir()}/copy.rs`, 'utf8'), 'made meanwhile');
      assert.deepEqual(others('source.rs', 'copy.rs'), []);
    } finally {
      await source.close();
    }
  });
});
