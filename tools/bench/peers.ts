// The peers of bench:store — lmdb-js, classic-level and better-sqlite3 —
// behind StoreAdapter, each at its most durable setting.
//
// They are not dependencies of ringstore: they live in their own npm prefix
// (bench-data/peers, which git ignores), installed there on first use and
// loaded with createRequire from it. The typings below describe only what
// the benchmark calls.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

import type { KeyValue, StoreAdapter, StoreContender } from './store_adapter.js';

/** The packages, as passed to npm install. better-sqlite3 13 segfaults on Node 20. */
const PEER_PACKAGES = ['lmdb', 'classic-level', 'better-sqlite3@12'] as const;
const BETTER_SQLITE3_MAJOR = 12;

export interface PeerModules {
  lmdb: LmdbModule;
  classicLevel: ClassicLevelModule;
  betterSqlite3: BetterSqlite3Constructor;
  /** Installed versions, by package name. */
  versions: Record<string, string>;
}

/**
 * Loads the peers from `prefix`, installing them there first (npm install
 * --prefix PREFIX --no-save ...) when any is missing or better-sqlite3 is not
 * major version 12. npm's output goes to stderr: stdout may be a JSON report.
 */
export function loadPeers(prefix: string, log: (line: string) => void): PeerModules {
  if (!peersInstalled(prefix)) {
    mkdirSync(prefix, { recursive: true });
    const args = ['install', '--prefix', prefix, '--no-save', '--no-audit', '--no-fund', ...PEER_PACKAGES];
    log(`peers missing from ${prefix}; installing them: npm ${args.join(' ')}`);
    const result = spawnSync('npm', args, { stdio: ['ignore', process.stderr, process.stderr] });
    if (result.error !== undefined || result.status !== 0) {
      throw new Error(`npm ${args.join(' ')} failed (${result.error?.message ?? `exit status ${result.status}`})`);
    }
    if (!peersInstalled(prefix)) throw new Error(`npm installed the peers but they still do not load from ${prefix}`);
  }
  const requireFromPrefix = createRequire(join(prefix, 'peers.cjs'));
  return {
    lmdb: requireFromPrefix('lmdb') as LmdbModule,
    classicLevel: requireFromPrefix('classic-level') as ClassicLevelModule,
    betterSqlite3: requireFromPrefix('better-sqlite3') as BetterSqlite3Constructor,
    versions: Object.fromEntries(['lmdb', 'classic-level', 'better-sqlite3'].map((name) => [name, installedVersion(prefix, name) ?? '?'])),
  };
}

function installedVersion(prefix: string, name: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(prefix, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return undefined;
  }
}

function peersInstalled(prefix: string): boolean {
  const requireFromPrefix = createRequire(join(prefix, 'peers.cjs'));
  for (const name of ['lmdb', 'classic-level', 'better-sqlite3']) {
    try {
      requireFromPrefix(name);
    } catch {
      return false;
    }
  }
  return Number(installedVersion(prefix, 'better-sqlite3')?.split('.')[0]) === BETTER_SQLITE3_MAJOR;
}

// ---- lmdb-js ----

interface LmdbOpenOptions {
  path: string;
  encoding: 'binary';
  overlappingSync: boolean;
  noSync: boolean;
  compression: boolean;
}

interface LmdbDatabase {
  put(key: string, value: Uint8Array): Promise<boolean>;
  get(key: string): Buffer | undefined;
  transaction<T>(callback: () => T): Promise<T>;
  getRange(options?: object): Iterable<{ key: string; value: Buffer }>;
  close(): Promise<void>;
}

interface LmdbModule {
  open(options: LmdbOpenOptions): LmdbDatabase;
}

/**
 * lmdb-js with overlappingSync: false and noSync: false: a write's promise
 * resolves after the commit's fsync. (With overlappingSync on, the Linux
 * default, it resolves when committed, before it is durable.)
 */
export function lmdbContender(modules: PeerModules): StoreContender {
  return {
    id: 'lmdb',
    label: 'lmdb-js',
    durability:
      'overlappingSync: false, noSync: false: a put resolves after its transaction is synced; puts of one event turn share a transaction; sync get',
    open: async (directory) => {
      const db = modules.lmdb.open({ path: join(directory, 'data.mdb'), encoding: 'binary', overlappingSync: false, noSync: false, compression: false });
      return {
        put: async (key, value) => {
          await db.put(key, value);
        },
        batch: async (entries) => {
          await db.transaction(() => {
            for (const [key, value] of entries) void db.put(key, value);
          });
        },
        get: async (key) => db.get(key),
        getSync: (key) => db.get(key),
        scan: async (visit) => {
          for (const { key, value } of db.getRange()) visit(key, value);
        },
        close: () => db.close(),
        markPhaseStart: () => undefined,
        describe: () => undefined,
      } satisfies StoreAdapter;
    },
  };
}

// ---- classic-level ----

interface ClassicLevelBatchOperation {
  type: 'put';
  key: string;
  value: Uint8Array;
}

interface ClassicLevelIterator {
  nextv(size: number): Promise<[string, Buffer][]>;
  close(): Promise<void>;
}

interface ClassicLevelDatabase {
  open(): Promise<void>;
  put(key: string, value: Uint8Array, options: { sync: boolean }): Promise<void>;
  batch(operations: ClassicLevelBatchOperation[], options: { sync: boolean }): Promise<void>;
  get(key: string): Promise<Buffer | undefined>;
  getSync(key: string): Buffer | undefined;
  iterator(options: { highWaterMarkBytes: number }): ClassicLevelIterator;
  close(): Promise<void>;
}

interface ClassicLevelModule {
  ClassicLevel: new (location: string, options: { keyEncoding: 'utf8'; valueEncoding: 'buffer' }) => ClassicLevelDatabase;
}

/** Entries classic-level's iterator hands over per nextv() call. */
const CLASSIC_LEVEL_SCAN_BATCH_COUNT = 1000;
/** Enough that nextv(1000) of ~110-byte entries is never cut short by highWaterMarkBytes. */
const CLASSIC_LEVEL_SCAN_BATCH_BYTES = CLASSIC_LEVEL_SCAN_BATCH_COUNT * 256;

/** classic-level (LevelDB) with { sync: true } on every write. */
export function classicLevelContender(modules: PeerModules): StoreContender {
  return {
    id: 'classic-level',
    label: 'classic-level',
    durability: '{ sync: true } on every put and batch (LevelDB fsyncs its log); sync get (getSync)',
    open: async (directory) => {
      const db = new modules.classicLevel.ClassicLevel(directory, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
      await db.open();
      return {
        put: (key, value) => db.put(key, value, { sync: true }),
        batch: (entries) => db.batch(entries.map(([key, value]) => ({ type: 'put', key, value })), { sync: true }),
        get: (key) => db.get(key),
        getSync: (key) => db.getSync(key),
        scan: async (visit) => {
          const iterator = db.iterator({ highWaterMarkBytes: CLASSIC_LEVEL_SCAN_BATCH_BYTES });
          try {
            for (;;) {
              const entries = await iterator.nextv(CLASSIC_LEVEL_SCAN_BATCH_COUNT);
              if (entries.length === 0) break;
              for (const [key, value] of entries) visit(key, value);
            }
          } finally {
            await iterator.close();
          }
        },
        close: () => db.close(),
        markPhaseStart: () => undefined,
        describe: () => undefined,
      } satisfies StoreAdapter;
    },
  };
}

// ---- better-sqlite3 ----

interface SqliteStatement {
  run(...parameters: unknown[]): unknown;
  get(...parameters: unknown[]): unknown;
  iterate(...parameters: unknown[]): IterableIterator<unknown>;
  pluck(): SqliteStatement;
  raw(): SqliteStatement;
}

interface SqliteDatabase {
  pragma(source: string, options?: { simple: boolean }): unknown;
  exec(source: string): void;
  prepare(source: string): SqliteStatement;
  transaction<A extends unknown[]>(body: (...args: A) => void): (...args: A) => void;
  close(): void;
}

type BetterSqlite3Constructor = new (filename: string) => SqliteDatabase;

/** SQLite's code for synchronous = FULL. */
const SQLITE_SYNCHRONOUS_FULL = 2;

/** better-sqlite3 in WAL mode with synchronous = FULL: every commit fsyncs the WAL. */
export function betterSqlite3Contender(modules: PeerModules): StoreContender {
  return {
    id: 'better-sqlite3',
    label: 'better-sqlite3',
    durability:
      'journal_mode = WAL, synchronous = FULL (each commit fsyncs the WAL); table kv(key TEXT PRIMARY KEY, value BLOB); all calls synchronous',
    open: async (directory) => {
      const db = new modules.betterSqlite3(join(directory, 'kv.sqlite'));
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      // Read back: a pragma SQLite does not accept is silently ignored.
      const journalMode = db.pragma('journal_mode', { simple: true });
      const synchronous = db.pragma('synchronous', { simple: true });
      if (journalMode !== 'wal' || synchronous !== SQLITE_SYNCHRONOUS_FULL) {
        db.close();
        throw new Error(`better-sqlite3: wanted journal_mode wal and synchronous ${SQLITE_SYNCHRONOUS_FULL}, got ${String(journalMode)} and ${String(synchronous)}`);
      }
      db.exec('CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB)');
      const upsert = db.prepare('INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)');
      const select = db.prepare('SELECT value FROM kv WHERE key = ?').pluck();
      const selectAll = db.prepare('SELECT key, value FROM kv ORDER BY key').raw();
      const upsertAll = db.transaction((entries: readonly KeyValue[]) => {
        for (const [key, value] of entries) upsert.run(key, value);
      });
      const getSync = (key: string): Uint8Array | undefined => select.get(key) as Buffer | undefined;
      return {
        put: async (key, value) => {
          upsert.run(key, value);
        },
        batch: async (entries) => upsertAll(entries),
        get: async (key) => getSync(key),
        getSync,
        scan: async (visit) => {
          for (const row of selectAll.iterate()) {
            const [key, value] = row as [string, Buffer];
            visit(key, value);
          }
        },
        close: async () => db.close(),
        markPhaseStart: () => undefined,
        describe: () => undefined,
      } satisfies StoreAdapter;
    },
  };
}
