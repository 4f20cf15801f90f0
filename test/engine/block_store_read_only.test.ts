// BlockStore.open(path, { readOnly: true }): reads work, every write call is
// refused with ERR_STORE_READ_ONLY, and nothing is ever written — not by
// recovery (a WAL tail, a torn commit), not by close(); the file is opened
// O_RDONLY, so a file without write permission opens; read-only opens share
// the file (flock LOCK_SH) with each other, in this process, its workers and
// other processes, while a writer and they exclude each other.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { collect, describeChild, isRoot, makeStoreDir, openSmallStore, PACKAGE_ENTRY_URL, rejectsWith, rejectsWithCode, removeStoreDir, runNodeModule, seededRandom, skipBecause } from './helpers.js';

/** Bytes of the store images made on the simulated device: small, whole 4096-byte blocks. */
const IMAGE_BYTES = 8 << 20;
const SEED = 20261202;
/** The user and group `nobody`, for an open run without root's right to read any file. */
const NOBODY_ID = 65534;

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** The access mode (O_RDONLY 0, O_WRONLY 1, O_RDWR 2) of every descriptor of this process open on `path`. */
function accessModesOf(path: string): number[] {
  const target = realpathSync(path);
  const modes: number[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    let link: string;
    try {
      link = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed meanwhile (readdir's own descriptor)
    }
    if (link !== target) continue;
    const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    assert.ok(flags !== null, `no flags in fdinfo of fd ${fd}`);
    modes.push(parseInt(flags[1], 8) & 3);
  }
  return modes;
}

/**
 * A store image that did not close cleanly: keys a0..a9 checkpointed,
 * b0..b9 acknowledged after the checkpoint (only in the WAL), and with
 * `torn`, one more put in flight at the crash (kept, torn or lost).
 */
async function uncleanImage(torn: boolean): Promise<Uint8Array> {
  const device = new SimulatedDevice({ sizeBytes: IMAGE_BYTES, ioAlignment: 4096 });
  const store = await BlockStore.open('image', { device, create: true, blockSize: 4096, encoding: 'string' });
  for (let index = 0; index < 10; index++) await store.put(`a${index}`, `checkpointed ${index}`);
  await store.checkpoint();
  for (let index = 0; index < 10; index++) await store.put(`b${index}`, `in the WAL ${index}`.padEnd(index % 3 === 0 ? 5000 : 10, '.'));
  if (torn) {
    device.crashAfter(1);
    await store.put('c', 'in flight'.padEnd(9000, '!')).catch(() => undefined);
  }
  return device.crash({ random: seededRandom(SEED) }).snapshot();
}

const WRITE_CALLS: [string, (store: BlockStore) => Promise<unknown>][] = [
  ['put', (store) => store.put('x', 'y')],
  ['delete', (store) => store.delete('a1')],
  ['batch', (store) => store.batch([{ type: 'put', key: 'x', value: 'y' }])],
  ['batch of nothing', (store) => store.batch([])],
  ['clear', (store) => store.clear()],
  ['clear of a range', (store) => store.clear({ prefix: 'a' })],
  ['checkpoint', (store) => store.checkpoint()],
  ['createWriteStream', async (store) => store.createWriteStream('x')],
];

describe('BlockStore read-only opens', () => {
  let dir: string | undefined;
  beforeEach(() => (dir = makeStoreDir()));
  afterEach(() => removeStoreDir(dir));

  async function storeFile(name: string, torn = false): Promise<string> {
    const path = `${dir}/${name}`;
    writeFileSync(path, await uncleanImage(torn));
    return path;
  }

  it('reads everything and refuses every write with ERR_STORE_READ_ONLY', async () => {
    const path = await storeFile('store');
    const store = await BlockStore.open<string>(path, { readOnly: true });
    try {
      assert.equal(store.readOnly, true);
      assert.equal(await store.get('a3'), 'checkpointed 3');
      assert.deepEqual(await store.getMany(['a0', 'b1', 'none']), ['checkpointed 0', 'in the WAL 1', undefined]);
      assert.equal(await store.has('b9'), true);
      assert.equal(await store.count({ prefix: 'b' }), 10);
      assert.equal((await collect(store.range())).length, 20);
      for (const [name, call] of WRITE_CALLS) {
        const error = await rejectsWithCode(() => call(store), 'ERR_STORE_READ_ONLY');
        assert.match(error.message, /readOnly/, name);
      }
      await store.flush(); // nothing to make durable: resolves
      assert.equal(await store.count(), 20, 'nothing changed');
      await store.verifyIntegrity();
    } finally {
      await store.close();
    }
    // After close, the closed store's code wins.
    await rejectsWithCode(() => store.put('x', 'y'), 'ERR_STORE_CLOSED');
  });

  for (const torn of [false, true]) {
    it(`replays ${torn ? 'a WAL tail ending in a torn commit' : 'an unclean WAL tail'} into memory only: the file's bytes are unchanged (seed ${SEED})`, async () => {
      const path = await storeFile('unclean', torn);
      const before = sha256(path);
      const store = await BlockStore.open<string>(path, { readOnly: true, encoding: 'string' });
      let seen: [string, string][];
      try {
        seen = (await collect(store.range())) as [string, string][];
        const checkpointed = seen.filter(([key]) => key.startsWith('a'));
        const replayed = seen.filter(([key]) => key.startsWith('b'));
        assert.equal(checkpointed.length, 10);
        assert.deepEqual(
          replayed.map(([key, value]) => [key, value.replace(/\.+$/, '')]),
          Array.from({ length: 10 }, (_, index) => [`b${index}`, `in the WAL ${index}`]),
          'every acknowledged commit after the checkpoint is replayed',
        );
        assert.ok(store.stats().lastCommitSequence > 0);
      } finally {
        await store.close();
      }
      assert.equal(sha256(path), before, 'the read-only open, its reads or its close wrote to the file');
      // A writer then recovers the same state (and may write).
      const writer = await BlockStore.open<string>(path);
      try {
        assert.deepEqual(await collect(writer.range()), seen);
      } finally {
        await writer.close();
      }
      assert.notEqual(sha256(path), before, 'a writer marks the store closed cleanly (the check above can see writes)');
    });
  }

  it('does no write, sync or trim on the device, from open to close', async () => {
    const device = new SimulatedDevice({ sizeBytes: IMAGE_BYTES, ioAlignment: 4096 }, await uncleanImage(true));
    const store = await BlockStore.open('image', { device, readOnly: true, sync: false });
    await store.getMany(['a1', 'b3', 'c']);
    await collect(store.range());
    await store.flush();
    await store.close();
    assert.deepEqual({ ...device.counts, reads: 0 }, { reads: 0, writes: 0, syncs: 0, trims: 0 });
  });

  it('opens a file without write permission, O_RDONLY', async function () {
    const path = await storeFile('no-write-permission');
    chmodSync(path, 0o444);
    const before = sha256(path);
    const store = await BlockStore.open(path, { readOnly: true });
    try {
      assert.deepEqual(accessModesOf(path), [0], 'the store holds the file O_RDONLY');
      assert.equal(await store.get('a1'), 'checkpointed 1');
    } finally {
      await store.close();
    }
    assert.equal(sha256(path), before);
    if (!isRoot()) await rejectsWithCode(() => BlockStore.open(path), 'ERR_STORE_PATH');
    // The probe above can tell: a writer holds its file O_RDWR.
    chmodSync(path, 0o644);
    const writer = await BlockStore.open(path);
    try {
      assert.deepEqual(accessModesOf(path), [2]);
    } finally {
      await writer.close();
    }
  });

  it('refuses a read-only open of a file it may not read with a message about permission, not about writing (found by a review)', async function () {
    if (!isRoot()) skipBecause(this, 'root runs the open as another user (root reads any file)');
    const path = await storeFile('no-read-permission');
    chmodSync(path, 0o000);
    // The suite's directory (mkdtemp: 0700) must let the other user through.
    chmodSync(dir!, 0o711);
    const child = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { BlockStore } = await import(${JSON.stringify(PACKAGE_ENTRY_URL)}).catch((error) => { console.log('IMPORT ' + error.code); process.exit(0); });
         for (const readOnly of [true, false]) {
           await BlockStore.open(${JSON.stringify(path)}, { readOnly }).then(
             (store) => store.close().then(() => console.log('opened')),
             (error) => console.log(error.code + ' ' + error.message),
           );
         }`,
      ],
      { uid: NOBODY_ID, gid: NOBODY_ID, encoding: 'utf8', cwd: '/' },
    );
    if (child.stdout.startsWith('IMPORT')) skipBecause(this, `the package cannot be read by another user here (${child.stdout.trim()})`);
    const lines = child.stdout.trim().split('\n');
    assert.equal(lines.length, 2, `${child.stdout}${child.stderr}`);
    for (const line of lines) {
      assert.match(line, /^ERR_STORE_PATH .*cannot open: EACCES \(permission denied/, line);
      assert.doesNotMatch(line, /write/, line);
    }
  });

  it('refuses a writer on a read-only file system with a message that says so, and opens there read-only', async function () {
    if (!isRoot()) skipBecause(this, 'mounting a file system needs root');
    const mountPoint = `${dir}/read-only-mount`;
    mkdirSync(mountPoint);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mountPoint]);
    try {
      writeFileSync(`${mountPoint}/store`, await uncleanImage(false));
      writeFileSync(`${mountPoint}/empty`, '');
      execFileSync('mount', ['-o', 'remount,ro', mountPoint]);
      // It said "no permission to write there" (found by a review): the
      // user looked at permissions while the file system was the cause.
      const refusal = await rejectsWithCode(() => BlockStore.open(`${mountPoint}/store`), 'ERR_STORE_PATH');
      assert.match(refusal.message, /EROFS \(the file system is read-only; open with readOnly: true/);
      // A create there is not sent to a read-only open: there is no store to read.
      for (const name of ['new', 'empty']) {
        const createRefusal = await rejectsWithCode(() => BlockStore.open(`${mountPoint}/${name}`, { create: true }), 'ERR_STORE_PATH');
        assert.match(createRefusal.message, /EROFS \(the file system is read-only\)/, name);
      }
      const store = await BlockStore.open(`${mountPoint}/store`, { readOnly: true });
      try {
        assert.equal(await store.get('b1'), 'in the WAL 1');
      } finally {
        await store.close();
      }
    } finally {
      execFileSync('umount', [mountPoint]);
    }
  });

  it('lets several read-only opens of one file in this process coexist', async () => {
    const path = await storeFile('shared');
    const first = await BlockStore.open(path, { readOnly: true });
    const second = await BlockStore.open(path, { readOnly: true });
    try {
      assert.deepEqual(await Promise.all([first.get('a2'), second.get('a2')]), ['checkpointed 2', 'checkpointed 2']);
      await first.close();
      assert.equal(await second.get('b2'), 'in the WAL 2', 'closing one read-only store leaves the other working');
    } finally {
      await first.close();
      await second.close();
    }
  });

  it('excludes a writer while read-only opens hold the file, and them while a writer does', async () => {
    const path = await storeFile('conflicts');
    const reader = await BlockStore.open(path, { readOnly: true });
    try {
      const error = await rejectsWithCode(() => BlockStore.open(path), 'ERR_STORE_LOCKED');
      assert.match(error.message, /open by another store/);
    } finally {
      await reader.close();
    }
    const writer = await BlockStore.open(path);
    try {
      const error = await rejectsWithCode(() => BlockStore.open(path, { readOnly: true }), 'ERR_STORE_LOCKED');
      assert.match(error.message, /open for writing/);
    } finally {
      await writer.close();
    }
    // Both released: each kind opens again.
    await (await BlockStore.open(path, { readOnly: true })).close();
    await (await BlockStore.open(path)).close();
  });

  it('shares the file with read-only opens of another process and a worker, and excludes their writers', async () => {
    const path = await storeFile('processes');
    const source = (readOnly: boolean): string => `
      const { BlockStore } = await import(${JSON.stringify(PACKAGE_ENTRY_URL)});
      try {
        const store = await BlockStore.open(${JSON.stringify(path)}, { readOnly: ${readOnly} });
        const value = await store.get('a4');
        await store.close();
        process.stdout.write(JSON.stringify({ opened: true, value }));
      } catch (error) {
        process.stdout.write(JSON.stringify({ opened: false, code: error.code }));
      }
    `;
    const inChild = async (readOnly: boolean): Promise<unknown> => {
      const child = await runNodeModule(source(readOnly));
      assert.equal(child.exitCode, 0, describeChild(child));
      return JSON.parse(child.stdout) as unknown;
    };
    const inWorker = (readOnly: boolean): Promise<unknown> =>
      new Promise((resolve, reject) => {
        const worker = new Worker(
          `import(${JSON.stringify(PACKAGE_ENTRY_URL)}).then(async ({ BlockStore }) => {
             const { parentPort } = require('node:worker_threads');
             try {
               const store = await BlockStore.open(${JSON.stringify(path)}, { readOnly: ${readOnly} });
               const value = await store.get('a4');
               await store.close();
               parentPort.postMessage({ opened: true, value });
             } catch (error) {
               parentPort.postMessage({ opened: false, code: error.code });
             }
           });`,
          { eval: true },
        );
        worker.once('message', resolve);
        worker.once('error', reject);
      });
    const reader = await BlockStore.open(path, { readOnly: true });
    try {
      assert.deepEqual(await inChild(true), { opened: true, value: 'checkpointed 4' });
      assert.deepEqual(await inWorker(true), { opened: true, value: 'checkpointed 4' });
      assert.deepEqual(await inChild(false), { opened: false, code: 'ERR_STORE_LOCKED' });
      assert.deepEqual(await inWorker(false), { opened: false, code: 'ERR_STORE_LOCKED' });
    } finally {
      await reader.close();
    }
    const writer = await BlockStore.open(path);
    try {
      assert.deepEqual(await inChild(true), { opened: false, code: 'ERR_STORE_LOCKED' });
      assert.deepEqual(await inWorker(true), { opened: false, code: 'ERR_STORE_LOCKED' });
    } finally {
      await writer.close();
    }
  });

  it('refuses readOnly with create, a non-boolean readOnly, and a missing or blank store', async () => {
    await rejectsWith(() => BlockStore.open(`${dir}/new`, { readOnly: true, create: true }), TypeError, 'ERR_INVALID_ARG');
    await rejectsWith(() => BlockStore.open(`${dir}/new`, { readOnly: 'yes' as unknown as boolean }), TypeError, 'ERR_INVALID_ARG');
    await rejectsWithCode(() => BlockStore.open(`${dir}/missing`, { readOnly: true }), 'ERR_STORE_NOT_FOUND');
    writeFileSync(`${dir}/empty`, '');
    await rejectsWithCode(() => BlockStore.open(`${dir}/empty`, { readOnly: true }), 'ERR_STORE_NOT_FOUND');
    const blank = new SimulatedDevice({ sizeBytes: IMAGE_BYTES });
    await rejectsWithCode(() => BlockStore.open('blank', { device: blank, readOnly: true }), 'ERR_STORE_NOT_FOUND');
    assert.equal(blank.counts.writes, 0);
  });

  it('leaves a store that a writer made and closed cleanly unchanged', async () => {
    const path = `${dir}/clean`;
    const writer = await openSmallStore(path);
    await writer.put('k', 'v');
    await writer.close();
    const before = sha256(path);
    const store = await BlockStore.open(path, { readOnly: true });
    assert.equal(await store.get('k'), 'v');
    await store.close();
    assert.equal(sha256(path), before);
  });
});
