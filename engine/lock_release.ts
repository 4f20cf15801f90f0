// Waiting until a closed store file's lock is really gone.
//
// A store file is flock'ed through its open file description, and the lock
// goes only when the last reference to that description does — not when
// close(2) on our descriptor returns. Other references outlive it:
//
// * a child process forked (child_process.spawn, anywhere in this process)
//   while the store was open holds a copy of every descriptor until its
//   exec closes the O_CLOEXEC ones: measured here, 5 of 300 close → reopen
//   cycles got ERR_STORE_LOCKED while another task spawned /bin/true in a
//   loop;
// * an io_uring request of the file that the kernel completed (the CQE is
//   posted) but has not freed yet: an io-wq request (fdatasync, fallocate)
//   drops its file reference in task work on the submitting thread, after
//   the completion is visible.
//
// So close() checks: until no flock on the file's inode is held by this
// process (other than by a store of this process that opened it since),
// it waits. /proc/locks lists every flock with its owner's pid and the
// inode; reading it takes no lock, so the check cannot itself hold the
// file against another opener (a probing flock could, and a child forked
// while the probe held it would keep that lock too).
import { readFileSync, statSync } from 'node:fs';

/**
 * The longest close() waits for a lingering reference to let go: a fork
 * → exec of a large process takes milliseconds (tens on a loaded machine).
 * Past it close() resolves anyway — whoever holds the lock then is not a
 * store — and the next open may see ERR_STORE_LOCKED.
 */
export const LOCK_RELEASE_WAIT_MS_MAX = 2_000;
/** Between two reads of /proc/locks while the lock lingers. */
const LOCK_RELEASE_POLL_MS = 1;
const PROC_LOCKS_PATH = '/proc/locks';

/** Where a file lives: the /proc/locks spelling of its device and inode. */
export interface FileIdentity {
  /** `major:minor:inode`, major and minor in hex as /proc/locks prints them. */
  readonly key: string;
}

/** Files that a store of this process holds open (and locked), by identity, with a count. */
const heldInThisProcess = new Map<string, number>();

/** The identity of the file at `path`, or undefined if it cannot be stat'ed. */
export function fileIdentity(path: string): FileIdentity | undefined {
  try {
    const stat = statSync(path, { bigint: true });
    // glibc's dev_t encoding (gnu_dev_major/gnu_dev_minor).
    const major = ((stat.dev >> 8n) & 0xfffn) | ((stat.dev >> 32n) & ~0xfffn);
    const minor = (stat.dev & 0xffn) | ((stat.dev >> 12n) & ~0xffn);
    return { key: `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}:${stat.ino}` };
  } catch {
    return undefined;
  }
}

/** A store of this process now holds the file's lock. */
export function noteLockHeld(identity: FileIdentity): void {
  heldInThisProcess.set(identity.key, (heldInThisProcess.get(identity.key) ?? 0) + 1);
}

/** The store that held the file's lock closed its descriptor. */
export function noteLockClosed(identity: FileIdentity): void {
  const count = heldInThisProcess.get(identity.key);
  if (count === undefined) throw new Error(`ringstore: closing a lock on ${identity.key} that was never noted`);
  if (count === 1) heldInThisProcess.delete(identity.key);
  else heldInThisProcess.set(identity.key, count - 1);
}

/**
 * Resolves once no flock on the file is left over from this process: none
 * is listed with this process's pid, or one is but a store of this process
 * holds the file again (its own lock). Bounded by `waitMsMax`; resolves
 * (does not reject) when the bound passes or /proc/locks cannot be read.
 * Returns how long it waited, in ms.
 */
export async function waitForLockRelease(identity: FileIdentity, waitMsMax = LOCK_RELEASE_WAIT_MS_MAX): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (heldInThisProcess.has(identity.key) || !lingers(identity)) return performance.now() - started;
    if (performance.now() - started >= waitMsMax) return performance.now() - started;
    await new Promise((resolve) => setTimeout(resolve, LOCK_RELEASE_POLL_MS));
  }
}

/** True while /proc/locks lists a flock of this process on the file. */
function lingers(identity: FileIdentity): boolean {
  let text: string;
  try {
    text = readFileSync(PROC_LOCKS_PATH, 'latin1');
  } catch {
    // No procfs (or not readable): nothing to wait on.
    return false;
  }
  const pid = String(process.pid);
  for (const line of text.split('\n')) {
    // "12: FLOCK  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF"; waiters ("12: -> FLOCK ...") hold nothing.
    const fields = line.trim().split(/\s+/);
    if (fields[1] !== 'FLOCK' || fields[4] !== pid) continue;
    if (fields[5] === identity.key) return true;
  }
  return false;
}
