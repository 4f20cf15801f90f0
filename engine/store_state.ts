// StoreState: whether a store is open, closing or closed, and whether it has
// failed. The BlockStore façade creates it and drives open and close; the
// parts read it, and any of them may fail the store.
//
// Failure: any IO error of a commit, trim or checkpoint moves the store to
// ERR_STORE_FAILED: the failing and all later writes are rejected (no retry
// that could pretend an fdatasync succeeded); reads of durable data still
// work; reopening recovers the durable prefix.
import { StoreError } from './store_error.js';

export class StoreState {
  /** Opened with readOnly: every write is refused with ERR_STORE_READ_ONLY. */
  #readOnly = false;
  #failure: StoreError | undefined;
  /** close() has been called; set before it does anything. */
  #closing = false;
  /** close() has released (or is releasing) the device. */
  #closed = false;

  /** The error that stopped the store, or undefined while it works. */
  get failure(): StoreError | undefined {
    return this.#failure;
  }

  /** Closed: close() is past its last write (markClosed); nothing more is sent to the device. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Whether close() has been called (it may still be running). */
  get closing(): boolean {
    return this.#closed || this.#closing;
  }

  /** Whether the store was opened with readOnly. */
  get readOnly(): boolean {
    return this.#readOnly;
  }

  /** Makes the store read-only, for good: set once, at open. */
  markReadOnly(): void {
    this.#readOnly = true;
  }

  beginClose(): void {
    this.#closing = true;
  }

  markClosed(): void {
    this.#closed = true;
  }

  /** Stops the store for `error` (the first failure wins); returns the store's failure. */
  fail(error: unknown): StoreError {
    if (this.#failure === undefined) {
      const cause = error instanceof Error ? error : new Error(String(error));
      this.#failure =
        error instanceof StoreError && error.code === 'ERR_STORE_FAILED'
          ? error
          : new StoreError('ERR_STORE_FAILED', failureMessage(cause), { cause });
    }
    return this.#failure;
  }

  checkOpen(): void {
    if (this.#closed || this.#closing) throw new StoreError('ERR_STORE_CLOSED', 'the store is closed');
  }

  checkWritable(): void {
    this.checkOpen();
    this.#checkWritesAccepted();
  }

  /** checkWritable() of a write that close() finishes (admitted before it began): refused once closed, not while closing. */
  checkWritableWhileClosing(): void {
    if (this.#closed) throw new StoreError('ERR_STORE_CLOSED', 'the store is closed');
    this.#checkWritesAccepted();
  }

  #checkWritesAccepted(): void {
    if (this.#readOnly) throw new StoreError('ERR_STORE_READ_ONLY', 'the store was opened with readOnly: true; writes are refused');
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** `error`, or ERR_STORE_CLOSED (caused by it) if the store closed meanwhile. */
  closedOr(error: unknown): unknown {
    if (!this.#closed && !this.#closing) return error;
    if (error instanceof StoreError && error.code === 'ERR_STORE_CLOSED') return error;
    return new StoreError('ERR_STORE_CLOSED', 'the store was closed during the read', { cause: error });
  }
}

/**
 * Why a store stopped, for its message. The kernel's errors carry an errno
 * code (EIO, ENOSPC…) and a reopen recovers the durable prefix; corruption
 * found while writing (a superblock's wrong key count) stays after a reopen.
 */
function failureMessage(cause: Error): string {
  if (cause instanceof StoreError && cause.code === 'ERR_STORE_CORRUPT') return `the store stopped accepting writes after finding corruption: ${cause.message}`;
  const code = (cause as NodeJS.ErrnoException).code;
  const kind =
    typeof code === 'string' && !code.startsWith('ERR_')
      ? 'an IO error'
      : code === 'ERR_RING_CLOSED' || code === 'ERR_FILE_CLOSED'
        ? // A ring passed in (the `ring` option) closed under the store.
          'its ring or file was closed'
        : cause instanceof StoreError
          ? 'an error'
          : 'an internal error';
  return `the store stopped accepting writes after ${kind}: ${cause.message} (reopen to recover)`;
}
