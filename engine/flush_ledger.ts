// FlushLedger: a device flush counts as succeeded only if every other flush
// in flight beside it succeeds too; and no flush follows a failed one.
//
// A flush here is anything that makes writes durable: an fdatasync, the
// flush half of a linked write + fdatasync, an RWF_DSYNC write. The store
// runs several at once — a commit's beside a checkpoint's or a growth's,
// two pipelined commits' — and their outcomes are not independent. A flush
// that fails may have lost what the device's cache held (a cache that could
// not destage its writes drops them; the kernel may drop dirty pages), and a
// flush that reaches the device after that, finding nothing left to flush,
// succeeds. Which of two flushes in flight reaches the device first is not
// the order they were issued in: an fdatasync goes through a kernel worker,
// and an RWF_DSYNC write or a linked write + fdatasync on a device without
// FUA (virtio-blk and loop devices among them) sends its cache flush only
// once its write is done, so a flush issued after it may arrive first (a
// review reproduced an acknowledged commit lost both ways, with a model of
// such a device). So a flush that completes successfully while others are
// in flight waits for all of them, and fails with the first failure
// recorded by then; and once a flush has failed, none is issued (it would
// report success for what the failed one lost, PostgreSQL's "fsyncgate";
// the store has stopped anyway).
//
// The cost: a commit's acknowledgement waits for a checkpoint's or a
// growth's flush in flight beside it, and two pipelined commits whose
// flushes overlap are acknowledged together, when the later one's flush
// ends (measured in docs/benchmarks.md, session 47). What no store can
// cover: a device or kernel that reports a flush done without having made
// its data durable.
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
  /** Flushes whose success was withheld (then confirmed or failed) for others still in flight. */
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
   * failure, without IO). Resolves once `flush` succeeded and every other
   * flush in flight when it did has settled, with no failure recorded
   * meanwhile; rejects with its own error, or with the first failure
   * recorded before it settled (the other flush's error: its outcome is
   * this one's too).
   */
  async run(flush: () => Promise<void>): Promise<void> {
    if (this.#failure !== undefined) {
      this.#refusedAfterFailure++;
      throw this.#failure.error;
    }
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
    // Succeeded as the device sees it; now every flush still in flight.
    // (One that settled meanwhile recorded its failure, if it failed.)
    if (this.#inFlight.size > 0) {
      this.#successesHeld++;
      await Promise.all([...this.#inFlight]);
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
