// Runs abstract-level's own test suite (tape) against RingLevel. Started as a
// child process by abstract_suite.test.ts, which reads the TAP summary and
// the closing line printed here; run it by hand with
//   node dist/test/level/abstract_suite.js
// (RINGSTORE_LEVEL_NO_SKIP=1 runs the skipped tests too, to see them fail).
//
// Every factory() call gets its own store file in one temporary directory,
// small (SUITE_STORE_SIZE_BYTES): the suite makes hundreds of stores, and
// the default 1 GiB store with its 64 MiB WAL zeroed on create would take
// minutes. All stores share one IoUringActor rather than each starting a
// thread. At the end every database is closed and the directory removed.
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import tape from 'tape';

import { STORE_RING_OPTIONS } from '../../engine/store_options.js';
import { IoUringActor } from '../../native/io_uring_actor.js';
import { RingLevel, type RingLevelOptions } from '../../level/index.js';

const require = createRequire(import.meta.url);
// abstract-level/test is CommonJS without types: (options) => void.
const suite = require('abstract-level/test') as (options: { test: unknown; factory: (options?: RingLevelOptions) => RingLevel }) => void;

/** Store size per factory() call: 4 MiB holds any test's data; creating one writes its 256 KiB WAL. */
const SUITE_STORE_SIZE_BYTES = 4 << 20;
const SUITE_WAL_SIZE_BYTES = 256 << 10;
const SUITE_CACHE_SIZE_BYTES = 1 << 20;

/**
 * Tests skipped on the root database, with why. Each name is skipped at its
 * first registration only: the suite registers every test twice, the second
 * time on a sublevel, whose prefix makes an empty key a non-empty store key,
 * so there they run and pass.
 */
const SKIPPED_ON_ROOT = new Map<string, string>([
  ['empty keys in batch with utf8 keyEncoding', 'the store has no empty key (keys are 1 to 1024 bytes)'],
  ['empty keys in batch with buffer keyEncoding', 'the store has no empty key'],
  ['empty keys in batch with view keyEncoding', 'the store has no empty key'],
  ['put(), get(), del() with empty Buffer key', 'the store has no empty key'],
  ['iterator() sorts lexicographically', 'writes an empty key, which the store has not'],
]);

const started = Date.now();
const directory = mkdtempSync(join(tmpdir(), 'ringstore-level-suite-'));
// Removed also when the run dies before onFinish (an uncaught error).
process.on('exit', () => rmSync(directory, { recursive: true, force: true }));
const ring = IoUringActor.start(STORE_RING_OPTIONS);
const databases: RingLevel[] = [];
let storeCount = 0;

const noSkip = process.env.RINGSTORE_LEVEL_NO_SKIP === '1';
const registered = new Set<string>();
const skipped: string[] = [];
let testCount = 0;

function test(name: string, ...rest: unknown[]): unknown {
  testCount++;
  const first = !registered.has(name);
  registered.add(name);
  const reason = SKIPPED_ON_ROOT.get(name);
  if (!noSkip && first && reason !== undefined) {
    skipped.push(`${name}: ${reason}`);
    return (tape.skip as (...args: unknown[]) => unknown)(`${name} (skipped on the root database: ${reason})`, ...rest);
  }
  return (tape as (...args: unknown[]) => unknown)(name, ...rest);
}
Object.assign(test, { skip: tape.skip, only: tape.only, onFinish: tape.onFinish });

function factory(options: RingLevelOptions = {}): RingLevel {
  const db = new RingLevel(join(directory, `db-${storeCount++}.ringstore`), {
    sizeBytes: SUITE_STORE_SIZE_BYTES,
    walSizeBytes: SUITE_WAL_SIZE_BYTES,
    cacheSizeBytes: SUITE_CACHE_SIZE_BYTES,
    ring,
    ...options,
  });
  databases.push(db);
  return db;
}

suite({ test, factory });

tape.onFinish(() => {
  void (async () => {
    // The stores of databases a test left open (open-test's reopen-on-event
    // tests do) are closed underneath abstract-level: db.close() would emit
    // events to those tests' listeners, whose late assertions tape counts.
    await Promise.all(databases.filter((db) => db.status === 'open').map((db) => db.store.close().catch(() => undefined)));
    await ring.close();
    rmSync(directory, { recursive: true, force: true });
    const missing = [...SKIPPED_ON_ROOT.keys()].filter((name) => !registered.has(name));
    for (const name of missing) console.log(`# skip list names a test the suite no longer has: ${name}`);
    for (const line of skipped) console.log(`# skipped: ${line}`);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log(`# ringstore-level-suite: ${testCount} tests, ${skipped.length} skipped, ${storeCount} stores, ${seconds} s`);
    if (missing.length > 0) process.exitCode = 1;
  })();
});
