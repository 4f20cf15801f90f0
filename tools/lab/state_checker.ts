// StateChecker: checks crash states of one workload. Every state is built
// on one image in /dev/shm (CrashImage: an undo log, not copies) and checked
// through the real IO path — the store opens the image with an io_uring
// ring, direct IO. The checks: it opens; what it holds is the state after a
// prefix of commit order holding every acknowledged operation (oracle.ts);
// the independent fsck (format/ only) is clean right after recovery and
// after the clean close; nothing it references was trimmed and not written
// since; a range scan agrees with get(); verifyIntegrity passes; it closes
// cleanly; opened again (after that close) it holds the same; it takes a
// new write.
import { BlockStore } from '../../engine/block_store.js';
import { STORE_RING_OPTIONS } from '../../engine/store_options.js';
import { RingBlockDevice } from '../../engine/ring_block_device.js';
import { IoUringActor } from '../../native/io_uring_actor.js';
import type { IoMark, IoMutation, IoObserver } from '../../native/io_observer.js';
import { fsckImage, type FsckReport } from '../fsck.js';
import { CrashImage } from './crash_image.js';
import { LabDevice } from './lab_device.js';
import { randomPart, type CrashState } from './crash_plan.js';
import { crashPointAt, forEachSector, sectorBytes, type PendingPart } from './crash_states.js';
import { checkScan, judgeRecovered, readTouched, sameValue, touchedKeys } from './oracle.js';
import { seededRandom } from './seeded_random.js';
import { LAB_CACHE_SIZE_BYTES, type TracedWorkload } from './workload.js';
import { WriteTrace, type TraceOperation } from './write_trace.js';

/** A range of the device a crashed recovery left written (or trimmed), in bytes. */
interface WrittenRange {
  position: number;
  length: number;
  trim: boolean;
}

/** Fans the ring's IO notifications out to the image's undo log and, during a recovery that will crash, a trace of it. */
class ObserverFanout implements IoObserver {
  readonly image: CrashImage;
  recovery: WriteTrace | undefined;

  constructor(image: CrashImage) {
    this.image = image;
  }

  onSubmit(mutation: IoMutation): void {
    this.image.onSubmit(mutation);
    this.recovery?.onSubmit(mutation);
  }

  onComplete(mutation: IoMutation, outcome: number | Error): void {
    this.recovery?.onComplete(mutation, outcome);
  }

  onMark(mark: IoMark): void {
    this.recovery?.onMark(mark);
  }
}

/** Checks crash states of one workload on one image, through one ring. */
export class StateChecker {
  readonly #workload: TracedWorkload;
  readonly #image: CrashImage;
  readonly #ring: IoUringActor;
  readonly #observer: ObserverFanout;
  readonly #keys: ReturnType<typeof touchedKeys>;

  constructor(workload: TracedWorkload) {
    this.#workload = workload;
    this.#image = new CrashImage(workload.trace, workload.base);
    try {
      this.#ring = IoUringActor.start(STORE_RING_OPTIONS);
    } catch (error) {
      this.#image.close();
      throw error;
    }
    this.#observer = new ObserverFanout(this.#image);
    this.#ring.observer = this.#observer;
    this.#keys = touchedKeys(workload.operations);
  }

  /** Builds the state on the image, checks it, and rolls the image back; returns the problem, if any. */
  async check(state: CrashState): Promise<string | undefined> {
    this.#image.moveTo(state.point, state.choice);
    try {
      const recoveryWrites = state.recoveryCrash === undefined ? [] : await this.#crashDuringRecovery(state.recoveryCrash);
      return await this.#checkImage(state, recoveryWrites);
    } finally {
      this.#image.rollback();
    }
  }

  /** An error as a problem's text: the image's temporary path left out, so a replay reads the same. */
  #describe(error: unknown): string {
    return String(error).replaceAll(this.#image.path, '<image>');
  }

  /** Closes the checker's ring and its crash image. */
  async close(): Promise<void> {
    this.#ring.observer = undefined;
    try {
      await this.#ring.close();
    } finally {
      this.#image.close();
    }
  }

  /**
   * Opens the store on the image through a LabDevice, so a check runs the
   * same IO in the same order every time (the same seed, the same verdict).
   * Errors are the open's (RingBlockDevice's or the store's).
   */
  async #open(observer?: WriteTrace): Promise<BlockStore> {
    const device = await RingBlockDevice.open(this.#ring, this.#image.path);
    return BlockStore.open(this.#image.path, { device: new LabDevice(device, observer), encoding: this.#workload.store.encoding, cacheSizeBytes: this.#workload.store.cacheSizeBytes ?? LAB_CACHE_SIZE_BYTES });
  }

  /**
   * Runs a first recovery (open and close) on the state, traced; then takes
   * back its writes and puts back only what a power failure after its
   * writeIndex-th completed write would have left. Returns the ranges that
   * crash left written.
   */
  async #crashDuringRecovery(crash: { writeIndex: number; seed: number }): Promise<WrittenRange[]> {
    const before = this.#image.undoMark();
    const trace = new WriteTrace(this.#image.path, this.#image.directory, 'recovery.data');
    this.#observer.recovery = trace;
    try {
      // A failure here is the main check's to report: whatever this
      // recovery wrote is taken back below, and the check opens the state
      // (plus what a crash would have kept of those writes) again.
      // The crash point is picked by completion index: the recovery's IO
      // must come in the same order every time (#open's LabDevice).
      const store = await this.#open(trace).catch(() => undefined);
      await store?.close().catch(() => undefined);
    } finally {
      this.#observer.recovery = undefined;
    }
    const written: WrittenRange[] = [];
    const completions = trace.events.flatMap((event, index) => (event.type === 'complete' && event.operation.kind !== 'flush' ? [index + 1] : []));
    this.#image.rollbackTo(before);
    if (completions.length > 0) {
      const point = crashPointAt(trace, completions[Math.min(crash.writeIndex, completions.length) - 1]);
      const random = seededRandom(crash.seed);
      const survivors = [...point.durable.map((operation) => ({ operation, part: 'all' as PendingPart }))];
      for (const operation of point.pending) survivors.push({ operation, part: randomPart(operation, random, true) });
      survivors.sort((a, b) => a.operation.id - b.operation.id);
      for (const { operation, part } of survivors) {
        const data = operation.kind === 'trim' ? undefined : trace.dataOf(operation);
        forEachSector(operation, part, (start, end, fate) => {
          this.#image.writeLayered(operation.position + start, sectorBytes(operation, data, start, end, fate));
          written.push({ position: operation.position + start, length: end - start, trim: operation.kind === 'trim' });
        });
      }
    }
    trace.close();
    return written;
  }

  async #checkImage(state: CrashState, recoveryWrites: readonly WrittenRange[]): Promise<string | undefined> {
    const acknowledged = new Set<number>();
    for (let index = 0; index < state.point.eventCount; index++) {
      const event = this.#workload.trace.events[index];
      if (event.type === 'ack') acknowledged.add(event.operation);
    }
    let store: BlockStore;
    try {
      store = await this.#open();
    } catch (error) {
      // Before the store's first superblocks are durable there is no store
      // yet: an empty device must simply have nothing acknowledged to lose.
      const code = (error as { code?: string }).code;
      if (code === 'ERR_STORE_NOT_FOUND' && acknowledged.size === 0) return undefined;
      return `open failed: ${this.#describe(error)}`;
    }
    let observed: Map<string, unknown>;
    let closing: Promise<void> | undefined;
    try {
      observed = await readTouched(store, this.#keys);
      const problem = judgeRecovered(this.#workload.operations, acknowledged, observed) ?? (await checkScan(store, observed));
      if (problem !== undefined) return problem;
      // The recovered state as the media holds it (recovery's repairs and
      // erases included, nothing the store wrote since).
      const recovered = fsckImage(this.#image.reader());
      if (!recovered.ok) return `fsck after recovery: ${recovered.errors.join('; ')}`;
      const trimmed = trimmedReference(state, recoveryWrites, recovered.references, this.#workload.store.blockSize);
      if (trimmed !== undefined) return trimmed;
      await store.verifyIntegrity();
      // A recovered store must close cleanly too (a checkpoint, trims).
      closing = store.close();
      await closing;
    } catch (error) {
      return `${closing === undefined ? 'check' : 'close'} failed: ${this.#describe(error)}`;
    } finally {
      if (closing === undefined) await store.close().catch(() => undefined);
    }
    // And as the clean close left it (a new checkpoint).
    const closed = fsckImage(this.#image.reader());
    if (!closed.ok) return `fsck after close: ${closed.errors.join('; ')}`;
    // Recovering again must change nothing, and the store takes writes again.
    let again: BlockStore;
    try {
      again = await this.#open();
    } catch (error) {
      return `a second open failed: ${this.#describe(error)}`;
    }
    closing = undefined;
    try {
      const observedAgain = await readTouched(again, this.#keys);
      for (const [id, value] of observed) {
        if (!sameValue(value, observedAgain.get(id))) return `a second recovery changed ${id.slice(1)}`;
      }
      const probe = this.#workload.store.encoding === 'binary' ? Buffer.from('after the crash') : 'after the crash';
      await again.put('\u0000probe', probe);
      if (!sameValue(probe, await again.get('\u0000probe'))) return 'the recovered store does not keep a new write';
      closing = again.close();
      await closing;
      return undefined;
    } catch (error) {
      return `${closing === undefined ? 'check after a second open' : 'second close'} failed: ${this.#describe(error)}`;
    } finally {
      if (closing === undefined) await again.close().catch(() => undefined);
    }
  }
}

/**
 * A block the recovered store references that the state trimmed and nothing
 * wrote again: a trim may leave zeros or the old bytes, so even when the
 * checksums pass such a reference is a bug (space reused or trimmed early).
 */
function trimmedReference(
  state: CrashState,
  recoveryWrites: readonly WrittenRange[],
  references: FsckReport['references'],
  blockSize: number,
): string | undefined {
  const onMedia: TraceOperation[] = [...state.point.durable];
  for (const operation of state.point.pending) if ((state.choice.get(operation) ?? 'none') !== 'none') onMedia.push(operation);
  onMedia.sort((a, b) => a.id - b.id);
  /** Block → what trimmed it. */
  const trimmedBy = new Map<number, string>();
  for (const operation of onMedia) {
    const first = Math.floor(operation.position / blockSize);
    const end = Math.ceil((operation.position + operation.length) / blockSize);
    for (let block = first; block < end; block++) {
      if (operation.kind === 'trim') trimmedBy.set(block, `#${operation.id}`);
      else trimmedBy.delete(block);
    }
  }
  // A recovery that crashed (the 'recovery' strategy) wrote and trimmed after all of them.
  for (const { position, length, trim } of recoveryWrites) {
    for (let block = Math.floor(position / blockSize); block < Math.ceil((position + length) / blockSize); block++) {
      if (trim) trimmedBy.set(block, 'the crashed recovery');
      else trimmedBy.delete(block);
    }
  }
  if (trimmedBy.size === 0) return undefined;
  for (const reference of references) {
    for (let block = reference.startBlock; block < reference.startBlock + reference.blockCount; block++) {
      const trim = trimmedBy.get(block);
      if (trim !== undefined) return `${reference.owner} references block ${block}, trimmed by ${trim} and not written since`;
    }
  }
  return undefined;
}

