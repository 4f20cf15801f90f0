// Taking a store file's flock: at once when it is free; a regular file's
// lock held only by processes that have exited (their io_uring teardown
// releases it) and a block device's (udev's probes hold it, and there is
// no telling them from a store) are tried again for a while; a regular
// file's held by a live process is refused at once.
import type { RingFile } from '../native/ring_file.js';
import { flockHeldOnlyByExited } from './flock_holders.js';

/**
 * How long a lock on a block device is tried again before the opener is
 * refused. udev holds a shared flock on a whole-disk device while it probes
 * it (after losetup, after a write's close: every store close starts a
 * probe), the protocol by which a writer that holds the exclusive lock
 * keeps probes off its whole disk (systemd.io/BLOCK_DEVICE_LOCKING; udev
 * locks no partition). A partitioner holds it exclusive for its run. A
 * store's own lock is held for its whole open, so a refusal takes this
 * long.
 */
const BLOCK_DEVICE_LOCK_WAIT_MS = 2000;
/**
 * How long a lock on a regular file held only by processes that have
 * exited is waited for (flock_holders.ts: their io_uring teardown releases
 * it, 40–220 ms after the death where measured). One held by a live
 * process is refused at once.
 */
const EXITED_HOLDER_LOCK_WAIT_MS = 2000;
/** Between tries of a lock: short against a probe or a teardown (tens of ms), long against a busy loop. */
const LOCK_RETRY_MS = 20;

/**
 * flock (LOCK_SH when `shared`, else LOCK_EX), without waiting while a live
 * process holds it; a regular file's lock held only by exited processes is
 * tried again for EXITED_HOLDER_LOCK_WAIT_MS, a block device's for
 * BLOCK_DEVICE_LOCK_WAIT_MS.
 */
export async function tryLock(file: RingFile, shared: boolean): Promise<boolean> {
  const lock = (): boolean => (shared ? file.tryLockShared() : file.tryLockExclusive());
  if (lock()) return true;
  const deadlineMs = performance.now() + (file.isBlockDevice ? BLOCK_DEVICE_LOCK_WAIT_MS : EXITED_HOLDER_LOCK_WAIT_MS);
  while (performance.now() < deadlineMs && (file.isBlockDevice || flockHeldOnlyByExited(file.fd))) {
    await new Promise((resolve) => setTimeout(resolve, LOCK_RETRY_MS));
    if (lock()) return true;
  }
  return false;
}
