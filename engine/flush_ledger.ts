// FlushLedger: a device flush counts as succeeded only if no flush issued
// before it, and in flight beside it, failed; and no flush follows a failed
// one.
//
// A flush here is anything that makes writes durable: an fdatasync, the
// flush half of a linked write + fdatasync, an RWF_DSYNC write. The store
// runs several at once — a commit's beside a checkpoint's, two pipelined
// commits' — and their outcomes are not independent. A flush that fails may
// have lost writes that completed before it was issued (a device cache
// that could not destage them drops them; the kernel may drop dirty pages),
// and a flush issued after it and succeeding says nothing for those: the
// device had nothing left of them to flush. So a flush that completes
// successfully while an earlier one is still in flight waits for it, and
// fails with the first failure recorded by then; and once a flush has
// failed, none is issued (it would report success for what the failed one
// lost, PostgreSQL's "fsyncgate"; the store has stopped anyway).
//
// A flush issued after one that then succeeds does not hold that success
// back: the device said the earlier writes were durable when it completed.
// (Except where the kernel's one-report-per-open-file record of writeback
// errors, errseq_t, lets the later fdatasync take an error that belonged to
// the earlier one: that needs a failed page-cache writeback of the store's
// file, which direct IO does not make; see docs/durability.md.) This keeps
// pipelined commits apart: the next one is issued while the previous one is
// flushed, and the previous one is not made to wait for it.
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
  /** Flushes whose success was withheld (then confirmed or failed) for an earlier one still in flight: for tests. */
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
