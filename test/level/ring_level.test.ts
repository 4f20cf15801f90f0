// RingLevel's own behaviour, beside abstract-level's suite: how its options
// reach the store, what opening does with createIfMissing and errorIfExists,
// what survives a reopen, empty keys, when iterators take their snapshot,
// seek() after writes, clear() in chunks, and how store errors are mapped.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { BlockStore } from '../../engine/block_store.js';
import { CLEAR_BATCH_KEYS_MAX, RingLevel, type RingLevelOptions } from '../../level/index.js';

/** Small stores: creating one writes its whole WAL. */
const TEST_STORE_SIZE_BYTES = 4 << 20;
const TEST_WAL_SIZE_BYTES = 256 << 10;

function errorCode(error: unknown): unknown {
  return (error as { code?: unknown }).code;
}

function causeCode(error: unknown): unknown {
  return errorCode((error as { cause?: unknown }).cause);
}

describe('RingLevel', () => {
  let dir: string;
  let count = 0;
  const opened: RingLevel<any, any>[] = []; // eslint-disable-line @typescript-eslint/no-explicit-any
  const location = (): string => join(dir, `db-${count++}.ringstore`);
  function level<K = string, V = string>(path: string, options: RingLevelOptions<K, V> = {}): RingLevel<K, V> {
    const db = new RingLevel<K, V>(path, { sizeBytes: TEST_STORE_SIZE_BYTES, walSizeBytes: TEST_WAL_SIZE_BYTES, ...options });
    opened.push(db);
    return db;
  }

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ringstore-level-'));
  });

  after(async () => {
    await Promise.all(opened.map((db) => db.close().catch(() => undefined)));
    rmSync(dir, { recursive: true, force: true });
  });

  it("is exported as 'ringstore/level'", async () => {
    // Through the package's exports map (a self-reference); a variable keeps
    // tsc from resolving it before dist/ exists.
    const specifier = 'ringstore/level';
    const exported = (await import(specifier)) as { RingLevel: unknown };
    assert.equal(exported.RingLevel, RingLevel);
  });

  describe('options', () => {
    it('passes store options through to BlockStore.open()', async () => {
      const path = location();
      const db = level(path, { sizeBytes: 2 << 20, blockSize: 8192, walSizeBytes: 128 << 10, sync: false });
      await db.open();
      assert.equal(statSync(path).size, 2 << 20);
      assert.equal(db.store.stats().blocksTotal, (2 << 20) / 8192);
      await db.put('k', 'v');
      await db.close();
      // idleCheckpointMs too: a bad one is the store's refusal.
      const refused = level(location(), { idleCheckpointMs: -1 });
      await assert.rejects(refused.open(), (error: Error & { code?: string; cause?: Error & { code?: string } }) => {
        const reason = error.code === 'ERR_INVALID_ARG' ? error : error.cause;
        return reason?.code === 'ERR_INVALID_ARG' && /idleCheckpointMs/.test(reason.message);
      });
    });

    it('refuses a bad location or an unreadable options object with ERR_INVALID_ARG, not an uncoded error (found by a review)', () => {
      const revoked = Proxy.revocable({}, {});
      revoked.revoke();
      const throwing = new Proxy({}, { get: () => { throw new Error('getter'); }, ownKeys: () => { throw new Error('ownKeys'); } });
      const cases: [string, () => unknown][] = [
        ['no location', () => new RingLevel(undefined as unknown as string)],
        ['an empty location', () => new RingLevel('')],
        ['a number as location', () => new RingLevel(0 as unknown as string)],
        ['an object as location', () => new RingLevel({} as unknown as string)],
        ['null options', () => new RingLevel(location(), null as unknown as RingLevelOptions)],
        ['a string as options', () => new RingLevel(location(), 'x' as unknown as RingLevelOptions)],
        ['revoked Proxy options', () => new RingLevel(location(), revoked.proxy as RingLevelOptions)],
        ['throwing Proxy options', () => new RingLevel(location(), throwing as RingLevelOptions)],
      ];
      for (const [label, make] of cases) {
        assert.throws(make, (error: Error & { code?: string }) => (error instanceof TypeError || error instanceof RangeError) && error.code === 'ERR_INVALID_ARG', label);
      }
    });

    it("refuses the store options it decides itself (encoding, create, readOnly) with ERR_INVALID_ARG, creating nothing (they were ignored: a readOnly database wrote; found by a review)", () => {
      for (const name of ['encoding', 'create', 'readOnly']) {
        const path = location();
        assert.throws(
          () => new RingLevel(path, { [name]: name === 'encoding' ? 'msgpack' : true } as RingLevelOptions),
          (error: Error & { code?: string }) => error instanceof TypeError && error.code === 'ERR_INVALID_ARG' && error.message.includes(`'${name}'`),
          name,
        );
        assert.equal(existsSync(path), false);
      }
    });

    it('opens the store with the binary value encoding, so the raw store sees the transcoded bytes', async () => {
      const path = location();
      const db = level<string, unknown>(path, { valueEncoding: 'json' });
      await db.put('user:1', { name: 'Ada' });
      await db.close();
      const store = await BlockStore.open(path, { encoding: 'binary' });
      try {
        assert.deepEqual(await store.get('user:1'), Buffer.from('{"name":"Ada"}'));
      } finally {
        await store.close();
      }
    });
  });

  describe('open()', () => {
    it('with createIfMissing: false on a missing location fails with ERR_STORE_NOT_FOUND and creates nothing', async () => {
      const path = location();
      const db = level(path, { createIfMissing: false });
      await assert.rejects(db.open(), (error) => {
        assert.equal(errorCode(error), 'LEVEL_DATABASE_NOT_OPEN');
        assert.equal(causeCode(error), 'ERR_STORE_NOT_FOUND');
        return true;
      });
      assert.equal(existsSync(path), false);
    });

    it('with errorIfExists: true on an existing store fails with ERR_LEVEL_EXISTS and leaves it as it was', async () => {
      const path = location();
      const first = level(path);
      await first.put('kept', 'yes');
      await first.close();
      const second = level(path);
      await assert.rejects(second.open({ errorIfExists: true }), (error) => {
        assert.equal(errorCode(error), 'LEVEL_DATABASE_NOT_OPEN');
        assert.equal(causeCode(error), 'ERR_LEVEL_EXISTS');
        return true;
      });
      await second.open();
      assert.equal(await second.get('kept'), 'yes');
      await second.close();
    });

    it('of a store open elsewhere fails with LEVEL_LOCKED', async () => {
      const path = location();
      const first = level(path);
      await first.open();
      const second = level(path);
      await assert.rejects(second.open(), (error) => {
        assert.equal(errorCode(error), 'LEVEL_DATABASE_NOT_OPEN');
        assert.equal(causeCode(error), 'LEVEL_LOCKED');
        return true;
      });
      await first.close();
    });
  });

  it('keeps data across close and reopen, sublevels included', async () => {
    const path = location();
    const db = level(path);
    await db.batch([
      { type: 'put', key: 'a', value: '1' },
      { type: 'put', key: 'b', value: '2' },
    ]);
    await db.sublevel('sub').put('c', '3');
    await db.del('b');
    await db.close();
    const reopened = level(path, { createIfMissing: false });
    assert.deepEqual(await reopened.iterator().all(), [
      ['!sub!c', '3'],
      ['a', '1'],
    ]);
    assert.equal(await reopened.sublevel('sub').get('c'), '3');
    await reopened.close();
  });

  describe('empty keys', () => {
    it('refuses to put an empty key on the root database with LEVEL_INVALID_KEY', async () => {
      const db = level(location());
      await assert.rejects(db.put('', 'x'), (error) => errorCode(error) === 'LEVEL_INVALID_KEY');
      await assert.rejects(db.batch([{ type: 'put', key: 'a', value: 'x' }, { type: 'put', key: '', value: 'y' }]), (error) => errorCode(error) === 'LEVEL_INVALID_KEY');
      assert.equal(await db.get('a'), undefined, 'the refused batch wrote nothing');
    });

    it('reads the empty key as absent and deletes it as a no-op', async () => {
      const db = level(location());
      assert.equal(await db.get(''), undefined);
      assert.equal(await db.has(''), false);
      assert.deepEqual(await db.getMany(['', 'x']), [undefined, undefined]);
      await db.del('');
      assert.deepEqual(await db.iterator({ lte: '' }).all(), []);
    });

    it('stores an empty key in a sublevel, whose prefix makes it non-empty', async () => {
      const db = level(location());
      const sub = db.sublevel('s');
      await sub.put('', 'empty');
      assert.equal(await sub.get(''), 'empty');
      assert.deepEqual(await sub.iterator().all(), [['', 'empty']]);
    });
  });

  describe('iterators', () => {
    it('take their snapshot when created, not at the first next()', async () => {
      const db = level(location());
      await db.put('a', '1');
      const iterator = db.iterator();
      await db.put('b', '2');
      await db.del('a');
      assert.deepEqual(await iterator.all(), [['a', '1']]);
    });

    it('keep their snapshot when seeking ahead after writes', async () => {
      const db = level(location());
      await db.batch(['a', 'c', 'e'].map((key) => ({ type: 'put' as const, key, value: key })));
      const iterator = db.iterator();
      await db.put('d', 'd');
      iterator.seek('b');
      assert.deepEqual(await iterator.all(), [
        ['c', 'c'],
        ['e', 'e'],
      ]);
    });

    it('keep their snapshot when seeking ahead after a write made through db.store', async () => {
      const db = level(location());
      await db.batch(['a', 'c', 'e'].map((key) => ({ type: 'put' as const, key, value: key })));
      const iterator = db.iterator();
      await db.store.put(Buffer.from('d'), Buffer.from('d'));
      iterator.seek('b');
      assert.deepEqual(await iterator.all(), [
        ['c', 'c'],
        ['e', 'e'],
      ]);
    });

    it('sort keys bytewise on the root database (abstract-level\'s own test of this writes an empty key)', async () => {
      const db = level(location());
      const keys = ['\u00ff', 'a', 'B', 'ab', '\u0100', '1', 'a\u0000', 'Z'];
      await db.batch(keys.map((key) => ({ type: 'put' as const, key, value: 'v' })));
      const expected = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      assert.deepEqual(await db.keys().all(), expected);
      assert.deepEqual(await db.keys({ reverse: true }).all(), [...expected].reverse());
    });

    it('restart over a new snapshot when seeking back after writes (the documented exception)', async () => {
      const db = level(location());
      await db.batch(['a', 'c'].map((key) => ({ type: 'put' as const, key, value: key })));
      const iterator = db.iterator();
      assert.deepEqual(await iterator.next(), ['a', 'a']);
      assert.deepEqual(await iterator.next(), ['c', 'c']);
      await db.put('b', 'b');
      iterator.seek('a');
      assert.deepEqual(await iterator.all(), [
        ['a', 'a'],
        ['b', 'b'],
        ['c', 'c'],
      ]);
    });

    it('seek back after a seek that restarted them, or after a skip that ran to the end, with writes between (found by a review)', async () => {
      const db = level(location());
      await db.batch(['a', 'b', 'c', 'd', 'e'].map((key) => ({ type: 'put' as const, key, value: key })));
      // A seek with no write since restarts the range at its target; a seek
      // behind that target after a write must not skip on from there.
      const restarted = db.iterator();
      restarted.seek('d');
      await db.put('z', 'z');
      restarted.seek('b');
      assert.deepEqual(await restarted.next(), ['b', 'b']);
      await restarted.close();
      // A skip past the end, then a seek behind it.
      const ended = db.iterator();
      assert.deepEqual(await ended.next(), ['a', 'a']);
      await db.put('y', 'y');
      ended.seek('zzz');
      assert.equal(await ended.next(), undefined);
      ended.seek('b');
      assert.deepEqual(await ended.next(), ['b', 'b']);
      await ended.close();
      // The same in reverse.
      const reverse = db.iterator({ reverse: true });
      reverse.seek('b');
      await db.put('x', 'x');
      reverse.seek('e');
      assert.deepEqual(await reverse.next(), ['e', 'e']);
      await reverse.close();
    });

    it('take bounds and seek targets longer than any key (1024 bytes) as the comparison points they are (found by a review: refused as keys)', async () => {
      const db = level(location());
      const longest = 'a'.repeat(1024); // a key the longer bounds below start with
      await db.batch(['a', longest, 'b'].map((key) => ({ type: 'put' as const, key, value: key.slice(0, 2) })));
      const bound = 'a'.repeat(1025);
      assert.deepEqual(await db.keys({ gt: bound }).all(), ['b']);
      assert.deepEqual(await db.keys({ gte: bound }).all(), ['b']);
      assert.deepEqual(await db.keys({ lt: bound }).all(), ['a', longest]);
      assert.deepEqual(await db.keys({ lte: bound, reverse: true }).all(), [longest, 'a']);
      assert.deepEqual(await db.keys({ gt: 'a', lt: bound }).all(), [longest]);
      const forward = db.keys();
      forward.seek(bound);
      assert.deepEqual(await forward.all(), ['b']);
      const backward = db.keys({ reverse: true });
      backward.seek(bound);
      assert.deepEqual(await backward.all(), [longest, 'a']);
      await db.clear({ lt: bound });
      assert.deepEqual(await db.keys().all(), ['b']);
      // A lone surrogate has no UTF-8 bytes: refused as in a key, however long (not read as U+FFFD).
      const lone = '\uD800';
      await assert.rejects(db.keys({ gt: lone + 'a'.repeat(1100) }).all(), (error: Error & { code?: string }) => error.code === 'ERR_INVALID_ARG');
      const seeking = db.keys();
      assert.throws(() => seeking.seek(lone), (error: Error & { code?: string }) => error.code === 'ERR_INVALID_ARG');
      await seeking.close();
    });

    it("end at a seek outside their range, as abstract-level says (\"the iterator will reach its natural end\"; they went to the range's first key: found by a review), and come back on the same snapshot at a seek inside it", async () => {
      const db = level(location());
      await db.batch(['a', 'b', 'c', 'd', 'e'].map((key) => ({ type: 'put' as const, key, value: key })));
      const reverse = db.keys({ gt: 'a', lt: 'e', reverse: true });
      reverse.seek('z');
      assert.equal(await reverse.next(), undefined);
      await reverse.close();
      for (const target of ['a', '0', 'e', 'z']) {
        const forward = db.keys({ gt: 'a', lte: 'd' });
        assert.equal(await forward.next(), 'b');
        forward.seek(target);
        assert.deepEqual(await forward.all(), [], `seek('${target}')`);
      }
      // Outside, then inside again: the writes made between are not seen (the same snapshot), before or after the position.
      const iterator = db.iterator({ gte: 'b', lte: 'd' });
      assert.deepEqual(await iterator.next(), ['b', 'b']);
      await db.put('c', 'new');
      await db.put('bb', 'new');
      iterator.seek('a');
      assert.equal(await iterator.next(), undefined);
      iterator.seek('c');
      assert.deepEqual(await iterator.nextv(10), [['c', 'c'], ['d', 'd']]);
      await iterator.close();
    });

    it("end at a forward seek after their snapshot ran out, without reading writes made since (a new snapshot showed them: found by a review)", async () => {
      const db = level(location());
      await db.put('a', '1');
      const iterator = db.iterator();
      // Fewer than asked: the snapshot has run out, though abstract-level has not reported the end.
      assert.deepEqual(await iterator.nextv(10), [['a', '1']]);
      await db.put('m', 'written after the iterator was made');
      iterator.seek('b');
      assert.deepEqual(await iterator.all(), []);
    });
  });

  it('clears a range larger than one batch, splitting a batch the WAL cannot take in one commit', async () => {
    // The smallest WAL (16 blocks) takes a commit of 4 blocks: fewer deletes
    // of these keys than CLEAR_BATCH_KEYS_MAX, so clear() has to split.
    const db = level(location(), { walSizeBytes: 64 << 10 });
    const keyCount = CLEAR_BATCH_KEYS_MAX * 2 + 100;
    const key = (index: number): string => `clear-key-${String(index).padStart(6, '0')}`;
    const fullChunk = Array.from({ length: CLEAR_BATCH_KEYS_MAX }, (_, index) => ({ type: 'del' as const, key: key(index) }));
    await assert.rejects(db.open().then(() => db.store.batch(fullChunk)), (error) => errorCode(error) === 'ERR_VALUE_TOO_LARGE');
    for (let start = 0; start < keyCount; start += 200) {
      const end = Math.min(start + 200, keyCount);
      await db.batch(Array.from({ length: end - start }, (_, offset) => ({ type: 'put' as const, key: key(start + offset), value: 'v' })));
    }
    await db.clear({ gt: key(0), lt: key(keyCount - 1) });
    assert.deepEqual(await db.keys().all(), [key(0), key(keyCount - 1)]);
    await db.clear();
    assert.deepEqual(await db.keys().all(), []);
  });

  it('clear() empties a full store (it failed with ERR_STORE_FULL and deleted nothing: its snapshot held the blocks its deletes freed, and it split no batch the store had no room for; found by a review)', async () => {
    const db = level(location(), { sizeBytes: 2 << 20, maxSizeBytes: 2 << 20, walSizeBytes: 256 << 10, blockSize: 4096 });
    const key = (index: number): string => `k${String(index).padStart(7, '0')}`;
    let keyCount = 0;
    await assert.rejects(
      (async () => {
        for (;;) {
          await db.batch(Array.from({ length: 20 }, (_, offset) => ({ type: 'put' as const, key: key(keyCount + offset), value: 'v'.repeat(200) })));
          keyCount += 20;
        }
      })(),
      (error) => errorCode(error) === 'ERR_STORE_FULL',
    );
    // Then one at a time, until not even one fits.
    await assert.rejects(
      (async () => {
        for (;;) {
          await db.put(key(keyCount), 'v'.repeat(200));
          keyCount++;
        }
      })(),
      (error) => errorCode(error) === 'ERR_STORE_FULL',
    );
    assert.ok(keyCount > 5000, `only ${keyCount} keys filled the store`);
    // Beside it, a delete and a put the store refuses (larger than it may
    // grow), both made once it runs: neither may keep it from taking new
    // snapshots (a review: both did).
    const clearing = db.clear();
    await db.del(key(100));
    assert.equal(
      await db.put('refused', 'v'.repeat(3 << 20)).then(
        () => 'stored',
        (error: unknown) => errorCode(error),
      ),
      'ERR_STORE_FULL',
    );
    await clearing;
    assert.deepEqual(await db.keys().all(), []);
    await db.put('after', 'the store takes writes again');
    assert.equal(await db.get('after'), 'the store takes writes again');
  });

  it('clear() deletes what its range held when it began, and no key written into the range while it runs that was not there', async () => {
    const db = level(location());
    const old = (index: number): string => `r${String(index).padStart(5, '0')}`;
    await db.batch(Array.from({ length: 3 * CLEAR_BATCH_KEYS_MAX }, (_, index) => ({ type: 'put' as const, key: old(index), value: 'old' })));
    const clearing = db.clear({ gte: 'r', lt: 's' });
    const written: string[] = [];
    // From the end of the range: ahead of the clear, which would reach them on a snapshot taken after them.
    for (let index = 3 * CLEAR_BATCH_KEYS_MAX - 1; index >= 0; index -= 97) {
      await db.put(`${old(index)}-new`, 'new');
      written.unshift(`${old(index)}-new`);
    }
    await clearing;
    assert.deepEqual(await db.keys({ gte: 'r', lt: 's' }).all(), written);
  });

  it('clear() keeps a key put just before it, still in flight when it takes its snapshot, wherever the key sorts (past its first batch it was deleted: found by a review)', async () => {
    const db = level(location());
    const key = (index: number): string => `f${String(index).padStart(6, '0')}`;
    const keyCount = 3 * CLEAR_BATCH_KEYS_MAX;
    for (let start = 0; start < keyCount; start += 512) {
      await db.batch(Array.from({ length: 512 }, (_, offset) => ({ type: 'put' as const, key: key(start + offset), value: 'old' })));
    }
    for (const at of [5, keyCount - 10]) {
      const late = `${key(at)}-late`;
      const putting = db.put(late, 'put before clear() was called');
      await Promise.all([putting, db.clear()]);
      assert.deepEqual(await db.keys().all(), [late], `a key at ${at}`);
      await db.batch(Array.from({ length: keyCount }, (_, index) => ({ type: 'put' as const, key: key(index), value: 'old' })));
      await db.del(late);
    }
  });

  it('close() stops a clear() before its next batch: LEVEL_DATABASE_NOT_OPEN, never a half-handed batch or the store\'s ERR_STORE_CLOSED (found by a review)', async () => {
    const path = location();
    const db = level(path);
    const key = (index: number): string => `c${String(index).padStart(5, '0')}`;
    const keyCount = 4 * CLEAR_BATCH_KEYS_MAX;
    await db.batch(Array.from({ length: keyCount }, (_, index) => ({ type: 'put' as const, key: key(index), value: 'v' })));
    const clearing = db.clear().then(
      () => undefined,
      (error: unknown) => error,
    );
    await db.close();
    const error = await clearing;
    assert.equal(errorCode(error), 'LEVEL_DATABASE_NOT_OPEN', String(error));
    await db.open();
    // Whole batches only, from the start of the range.
    const left = await db.keys().all();
    assert.equal((keyCount - left.length) % CLEAR_BATCH_KEYS_MAX, 0, `${keyCount - left.length} keys deleted`);
    assert.deepEqual(left, Array.from({ length: left.length }, (_, index) => key(keyCount - left.length + index)));
  });

  it('maps a key over 1024 bytes to LEVEL_INVALID_KEY, keeping the store code', async () => {
    const db = level(location());
    await assert.rejects(db.put('x'.repeat(1025), 'v'), (error) => {
      assert.equal(errorCode(error), 'LEVEL_INVALID_KEY');
      assert.equal((error as { storeCode?: unknown }).storeCode, 'ERR_KEY_TOO_LARGE');
      return true;
    });
  });
});
