// FlushLedger: a device flush counts as succeeded only if every flush issued
// before it succeeds too and no failure was recorded before its success is
// seen; and no flush follows a failed one.
//
// A flush here is anything that makes writes durable: an fdatasync, the
// flush half of a linked write + fdatasync, an RWF_DSYNC write. The store
// runs several at once — a commit's beside a checkpoint's or a growth's,
// two pipelined commits' — and their outcomes are not independent. A flush
// that fails may have lost writes that completed before it was issued (a
// device cache that could not destage them drops them; the kernel may drop
// dirty pages), and a flush issued after it and succeeding says nothing for
// those: the device had nothing left of them to flush. So a flush that
// completes successfully while an earlier one is still in flight waits for
// it, and fails with the first failure recorded by then; and once a flush
// has failed, none is issued (it would report success for what the failed
// one lost, PostgreSQL's "fsyncgate"; the store has stopped anyway).
//
// RWF_DSYNC writes (a commit of inline records, journal.ts) are held like
// the others although they vouch for their own bytes only: on a device
// without FUA (virtio-blk and loop devices among them) such a write goes
// into the device's volatile cache and is followed by a cache flush of the
// kernel's, and an fdatasync issued before it may reach the device after it
// (it goes through a worker, the direct-IO write at once): if that flush
// fails and the cache is dropped, the write's own flush finds nothing and
// succeeds (found by a review, with a model of such a device).
//
// A success is not held back by a flush issued after it: the device said
// the earlier writes were durable when it completed, and pipelined commits
// are acknowledged in order anyway. (Conservatively, a failure recorded
// before the success is seen fails it all the same.) What is left: Linux
// records a page-cache writeback error once per open file (errseq_t), so of
// two flushes of the store's file either may take an error that belonged to
// the other's writes (docs/durability.md says when the store's file has
// page-cache writeback at all).
//
// One ledger per device a store uses (ClosedDeviceGuard holds it). The
// store fails on any failed flush anyway (StoreState.fail); the ledger makes
// sure nothing was acknowledged on a success the failure invalidated.

/** Raw outcome of a flush in flight, settled when the device settles it (never rejects). */
type FlushSettled = Promise<void>;

export class FlushLedger {
  readonly #inFlight = new Set<FlushSettled>();
  /** The first flush failure seen, if any; sticky. */
  #failure: { readonly error: unknown } | undefined;
  /** Flushes whose success was withheld (then confirmed or failed) for an earlier one still in flight. */
  #successesHeld = 0;
  /** Flushes refused because an earlier flush had failed (no IO issued). */
  #refusedAfterFailure = 0;

  /** Whether a flush has failed: every later one is refused. */
  get failed(): boolean {
    return this.#failure !== undefined;
  }

  get successesHeld(): number {
    return this.#successesHeld;
  }

  get refusedAfterFailure(): number {
    return this.#refusedAfterFailure;
  }

  /**
   * Issues `flush` unless a flush has failed (then rejects with that
   * failure, without IO). Resolves once `flush` succeeded and every flush
   * issued before it and still in flight then has settled, with no failure
   * recorded meanwhile; rejects with its own error, or with the first
   * failure recorded before it settled (the other flush's error: its
   * outcome is this one's too).
   */
  async run(flush: () => Promise<void>): Promise<void> {
    if (this.#failure !== undefined) {
      this.#refusedAfterFailure++;
      throw this.#failure.error;
    }
    const earlier = this.#inFlight.size > 0 ? [...this.#inFlight] : undefined;
    let flushing: Promise<void>;
    try {
      flushing = flush();
    } catch (error) {
      // A device that throws instead of rejecting failed this flush all the same.
      flushing = Promise.reject(error);
    }
    const settled: FlushSettled = flushing.then(
      () => undefined,
      (error: unknown) => this.#record(error),
    );
    this.#inFlight.add(settled);
    try {
      await flushing;
    } finally {
      this.#inFlight.delete(settled);
    }
    // Succeeded as the device sees it; now the earlier flushes still in flight.
    if (earlier !== undefined && earlier.some((other) => this.#inFlight.has(other))) {
      this.#successesHeld++;
      await Promise.all(earlier);
    }
    const failure = this.#failureSoFar();
    if (failure !== undefined) throw failure.error;
  }

  /** The failure recorded so far (a method: what other flushes record meanwhile is not narrowed away). */
  #failureSoFar(): { readonly error: unknown } | undefined {
    return this.#failure;
  }

  #record(error: unknown): void {
    this.#failure ??= { error: error ?? new Error('ringstore: a flush failed without an error') };
  }
}
