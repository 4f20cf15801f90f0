// A memory cgroup of its own for each child of the scale section
// (`bench:store --scale-memory-max SIZE`), so that a store larger than the
// limit behaves as it would on a machine whose RAM it outgrows.
//
// Why: lmdb-js reads and writes its file through the OS page cache, and
// on a host with RAM to spare its whole file stays there (RSS 1.9 GB at
// 10 M keys on a 24 GiB host), while ringstore reads with O_DIRECT into a
// cache of its own. A cgroup's memory limit covers the page cache its
// processes fill (cgroup v1 and v2 alike), so both stores then run with the
// same memory (docs/benchmarks.md, session 25: under 1 GiB, lmdb-js's
// random-order load fell from 35–45 k to ~1.5 k keys/s once its file
// outgrew the limit).
//
// The cgroup is made under the bench's own memory cgroup, which takes
// write access to it (root, usually): cgroup v1's memory hierarchy, or
// cgroup v2 where the parent delegates the memory controller to its
// children (cgroup.subtree_control). Anything else is refused up front
// with what is missing.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The smallest limit --scale-memory-max takes: below it Node itself does not start. */
export const MEMORY_MAX_BYTES_MIN = 64 * 1024 * 1024;
/** A cgroup's directory is removed once its child has exited; the kernel may take a moment to let it go. */
const REMOVE_ATTEMPTS_MAX = 50;
const REMOVE_RETRY_MS = 20;
/** A limit reads back rounded down to whole pages: at most this far below what was written (64 KiB pages on some arm64 kernels). */
const LIMIT_ROUNDING_BYTES_MAX = 64 * 1024;

const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Parses a size such as 1g, 512m, 768M or 1073741824 (bytes); RangeError below MEMORY_MAX_BYTES_MIN or malformed. */
export function parseMemorySize(text: string): number {
  const match = /^(\d+)([kmg]?)(?:i?b)?$/i.exec(text.trim());
  const bytes = match === null ? Number.NaN : Number(match[1]) * SIZE_UNITS[match[2].toLowerCase()]!;
  if (!Number.isSafeInteger(bytes) || bytes < MEMORY_MAX_BYTES_MIN) {
    throw new RangeError(`--scale-memory-max must be a size of at least ${MEMORY_MAX_BYTES_MIN / 1024 ** 2} MiB (like 1g or 512m), got ${text}`);
  }
  return bytes;
}

/** Which cgroup hierarchy holds the memory controller, and this process's place in it. */
export interface MemoryHierarchy {
  readonly version: 1 | 2;
  /** The directory of this process's memory cgroup. */
  readonly directory: string;
}

/**
 * Where this process's memory cgroup is, from /proc/self/cgroup's text and
 * the mount point (`/sys/fs/cgroup`): v1 when a `N:memory:/path` line names
 * one (mounted at <root>/memory), else v2's `0::/path`. Undefined when
 * neither is there.
 */
export function memoryHierarchyOf(procSelfCgroup: string, root: string, v2Mounted: boolean): MemoryHierarchy | undefined {
  const lines = procSelfCgroup.split('\n').map((line) => /^([^:]*):([^:]*):(.*)$/.exec(line));
  for (const line of lines) {
    if (line !== null && line[2].split(',').includes('memory')) return { version: 1, directory: join(root, 'memory', line[3]) };
  }
  if (!v2Mounted) return undefined;
  const unified = lines.find((line) => line !== null && line[1] === '0' && line[2] === '');
  return unified === undefined || unified === null ? undefined : { version: 2, directory: join(root, unified[3]) };
}

/** A cgroup made for one child: spawn it through `wrap`, then remove() the cgroup once it has exited. */
export interface MemoryCgroup {
  readonly directory: string;
  /**
   * The command that runs `command args…` inside the cgroup: a shell that
   * moves itself in, then execs the command, so that nothing the command
   * allocates is charged elsewhere.
   */
  wrap(command: string, args: readonly string[]): { command: string; args: string[] };
  /** Removes the cgroup (its processes must have exited). */
  remove(): Promise<void>;
}

/**
 * Makes a cgroup named `name` under this process's memory cgroup, limited
 * to `limitBytes` (memory and page cache; swap is not limited: on a host
 * with swap the child's heap may move there, its page cache cannot).
 * Throws an Error saying what is missing where no such cgroup can be made.
 */
export function createMemoryCgroup(name: string, limitBytes: number, root = '/sys/fs/cgroup'): MemoryCgroup {
  if (!Number.isSafeInteger(limitBytes) || limitBytes < MEMORY_MAX_BYTES_MIN) throw new RangeError(`a memory limit of at least ${MEMORY_MAX_BYTES_MIN} bytes, got ${limitBytes}`);
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new RangeError(`a cgroup name of letters, digits, '.', '_' and '-', got ${JSON.stringify(name)}`);
  let procSelfCgroup: string;
  try {
    procSelfCgroup = readFileSync('/proc/self/cgroup', 'utf8');
  } catch (error) {
    throw new Error(`--scale-memory-max needs cgroups: /proc/self/cgroup cannot be read (${(error as Error).message})`);
  }
  const hierarchy = memoryHierarchyOf(procSelfCgroup, root, existsSync(join(root, 'cgroup.controllers')));
  if (hierarchy === undefined) throw new Error(`--scale-memory-max needs a memory cgroup: /proc/self/cgroup names none under ${root}`);
  const directory = join(hierarchy.directory, name);
  try {
    mkdirSync(directory);
  } catch (error) {
    throw new Error(`--scale-memory-max cannot make the cgroup ${directory} (run as root, with write access to cgroups): ${(error as Error).message}`);
  }
  const limitFile = join(directory, hierarchy.version === 1 ? 'memory.limit_in_bytes' : 'memory.max');
  try {
    // v2: memory.max exists in a child only where the parent delegates the memory controller.
    if (!existsSync(limitFile)) throw new Error(`${limitFile} does not exist (cgroup v2: is memory in ${join(hierarchy.directory, 'cgroup.subtree_control')}?)`);
    writeFileSync(limitFile, `${limitBytes}\n`);
    const written = Number(readFileSync(limitFile, 'utf8').trim());
    if (!(written <= limitBytes && written > limitBytes - LIMIT_ROUNDING_BYTES_MAX)) throw new Error(`${limitFile} reads ${written} after ${limitBytes} was written`);
  } catch (error) {
    rmdirSync(directory);
    throw new Error(`--scale-memory-max cannot limit the cgroup ${directory}: ${(error as Error).message}`);
  }
  const procsFile = join(directory, 'cgroup.procs');
  return {
    directory,
    wrap: (command, args) => ({ command: '/bin/sh', args: ['-c', 'echo $$ > "$0" && exec "$@"', procsFile, command, ...args] }),
    remove: async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          rmdirSync(directory);
          return;
        } catch (error) {
          // EBUSY while the kernel is still tearing the exited child down.
          if (attempt >= REMOVE_ATTEMPTS_MAX || (error as NodeJS.ErrnoException).code !== 'EBUSY') throw error;
          await new Promise((resolve) => setTimeout(resolve, REMOVE_RETRY_MS));
        }
      }
    },
  };
}
