// EndingStreams: write streams whose end() was called but whose put is not
// yet handed to the journal. A stream ended before flush() is a write
// accepted before it, and one ended before close() a pending write that
// close() finishes (docs/store.md); but between end() and the hand-over the
// stream still writes its last chunk and takes its blocks, so the journal
// does not know of it yet. flush() and close() wait here for the streams
// ended by the time they were called (found by a review: with sync: false,
// `stream.end(value); await flush()` lost the value on power loss, and
// close() refused a stream ended before it with ERR_STORE_CLOSED).

/** One write stream, from its creation until its put is in the journal or it failed. */
export class EndingStream {
  readonly #ended: () => boolean;
  readonly #streams: Set<EndingStream>;
  /** Resolves once the put is handed to the journal, or the stream failed or was destroyed: never rejects. */
  readonly settled: Promise<void>;
  #settle!: () => void;
  /** Ended before close() began: its remaining steps go on while the store closes. */
  admittedPastClose = false;

  constructor(streams: Set<EndingStream>, ended: () => boolean) {
    this.#streams = streams;
    this.#ended = ended;
    this.settled = new Promise<void>((resolve) => {
      this.#settle = resolve;
    });
    streams.add(this);
  }

  get ended(): boolean {
    return this.#ended();
  }

  /** Its put is in the journal, or it will never be: nobody waits for it any more. Idempotent. */
  done(): void {
    this.#streams.delete(this);
    this.#settle();
  }
}

export class EndingStreams {
  readonly #streams = new Set<EndingStream>();

  /** Tracks a new write stream; `ended` says whether its end() was called. */
  track(ended: () => boolean): EndingStream {
    return new EndingStream(this.#streams, ended);
  }

  /**
   * Settles when every stream ended by now is in the journal (or failed);
   * undefined when none is waited for, so that a caller with nothing to
   * wait for goes on in the same tick. Never rejects.
   */
  handedOver(): Promise<void> | undefined {
    const ended = [...this.#streams].filter((stream) => stream.ended);
    return ended.length === 0 ? undefined : Promise.all(ended.map((stream) => stream.settled)).then(() => undefined);
  }

  /**
   * handedOver() for close(), called as it begins: the streams ended by now
   * may finish while the store closes (their last writes, blocks and commit).
   */
  admitPastClose(): Promise<void> | undefined {
    for (const stream of this.#streams) if (stream.ended) stream.admittedPastClose = true;
    return this.handedOver();
  }
}
