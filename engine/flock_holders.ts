// Who holds the flock of a file, from /proc/locks: an opener refused the
// lock asks whether its holders are still alive.
//
// Why: a process that dies with io_uring requests in flight keeps its flock
// after it has exited. The kernel drops the ring's references to the file
// from a worker once those requests are cancelled, and the lock goes with
// the file's last reference: 40–220 ms after the death on the hosts
// measured. A supervisor that restarted a store at once found it locked by
// the dead process (found by a review: 6 of 16 child deaths; also after
// SIGKILL). Such a lock is waited for (tryLock, file_lock.ts); one held by a
// live process is refused at once, as before.
import { fstatSync, readFileSync } from 'node:fs';

import { decodeDeviceNumber } from './block_device_sysfs.js';

const PROC_LOCKS = '/proc/locks';

/**
 * The pids of the flocks held on the file open at `fd` (waiters left out),
 * or undefined where they cannot be told: no /proc/locks, or a holder of
 * another pid namespace (shown as pid 0 or -1).
 */
export function flockHolderPids(fd: number): number[] | undefined {
  let table: string;
  let stat: { dev: number; ino: number };
  try {
    table = readFileSync(PROC_LOCKS, 'latin1');
    stat = fstatSync(fd);
  } catch {
    return undefined;
  }
  const { major, minor } = decodeDeviceNumber(stat.dev);
  // "1: FLOCK  ADVISORY  WRITE 29060 fe:00:5350884 0 EOF" (fs/locks.c,
  // lock_get_status: pid, then the device in hex and the inode); a waiter's
  // line has "->" after the number.
  const file = `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}:${stat.ino}`;
  const pids: number[] = [];
  for (const line of table.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] !== 'FLOCK' || fields[5] !== file) continue;
    const pid = Number(fields[4]);
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    pids.push(pid);
  }
  return pids;
}

/** Whether the process `pid` has exited: no such process, or a zombie not yet reaped. */
export function processExited(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it exists, another user's.
    return (error as { code?: unknown }).code === 'ESRCH';
  }
  try {
    // "pid (comm) S …": the state follows the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    // Gone between the two looks.
    return true;
  }
}

/**
 * Whether every flock on the file open at `fd` belongs to a process that
 * has exited (none at all: released meanwhile): then the lock is on its
 * way to being released, and worth waiting for. False if any holder may be
 * alive, or the holders cannot be told.
 */
export function flockHeldOnlyByExited(fd: number): boolean {
  const pids = flockHolderPids(fd);
  return pids !== undefined && pids.every(processExited);
}
