// Checkpointer: writes checkpoints and superblocks. A checkpoint is a full
// rewrite of the index as of the newest applied (and durable) commit S, into
// extents of the data region; the next superblock generation, written to the
// other slot, names it, S and the WAL block where commit S+1 starts. Only
// then are the old checkpoint's extents and the WAL space of commits up to S
// released. Commits go on while a checkpoint is written.
//
// It owns the current superblock; the journal starts checkpoints (when the
// WAL fills up) and the façade asks for them (checkpoint(), close()).
import { ByteWriter } from '../format/byte_writer.js';
import { beginCheckpointPayload, finishCheckpointPayload } from '../format/checkpoint.js';
import { encodeFrame, frameBlockCount } from '../format/frame.js';
import { writePut } from '../format/records.js';
import { encodeSuperblock, type Superblock } from '../format/superblock.js';
import { allocAligned } from '../native/aligned_buffer.js';
import type { BlockDevice } from './block_device.js';
import { keyStringToBytes } from './key_codec.js';
import type { KeyIndex } from './key_index.js';
import type { Space } from './space.js';
import { StoreError } from './store_error.js';
import type { StoreState } from './store_state.js';
import type { WalSpace } from './wal_space.js';

/**
 * First size of a checkpoint's encoding buffer when the last checkpoint was
 * small (it grows by doubling): a small store's close should not allocate
 * a megabyte it does not fill.
 */
const CHECKPOINT_WRITER_INITIAL_BYTES = 64 << 10;

/** What a checkpoint needs of the journal: the newest applied commit, and a way to make it durable. */
export interface AppliedCommits {
  /** Highest sequence written and applied to the index. */
  readonly appliedSequence: number;
  /** fdatasync now; then everything applied so far is durable. */
  syncNow(): Promise<void>;
}

export interface CheckpointerParts {
  device: BlockDevice;
  /** The superblock recovery found (or format wrote). */
  superblock: Superblock;
  /** Whether every applied commit is durable already (sync: true). */
  sync: boolean;
  index: KeyIndex;
  walSpace: WalSpace;
  space: Space;
  state: StoreState;
}

export class Checkpointer {
  readonly #device: BlockDevice;
  readonly #blockSize: number;
  readonly #sync: boolean;
  readonly #index: KeyIndex;
  readonly #walSpace: WalSpace;
  readonly #space: Space;
  readonly #state: StoreState;
  #superblock: Superblock;
  #checkpointing: Promise<void> | undefined;
  #checkpoints = 0;

  constructor(parts: CheckpointerParts) {
    this.#device = parts.device;
    this.#superblock = parts.superblock;
    this.#blockSize = parts.superblock.blockSize;
    this.#sync = parts.sync;
    this.#index = parts.index;
    this.#walSpace = parts.walSpace;
    this.#space = parts.space;
    this.#state = parts.state;
  }

  /** The newest durable superblock. */
  get superblock(): Readonly<Superblock> {
    return this.#superblock;
  }

  /** Checkpoints written since open. */
  get checkpointCount(): number {
    return this.#checkpoints;
  }

  /** Whether a checkpoint is being written. */
  get running(): boolean {
    return this.#checkpointing !== undefined;
  }

  /**
   * Writes a checkpoint of the index at `journal`'s newest applied commit,
   * or joins the one being written. Rejects with ERR_STORE_FULL if there is
   * no room for it (the store goes on), or with the store's failure.
   */
  run(journal: AppliedCommits): Promise<void> {
    this.#checkpointing ??= this.#checkpoint(journal)
      .catch((error: unknown) => {
        // No room is an answer, not a failure: nothing was written that a
        // superblock names. IO errors stop the store.
        if (error instanceof StoreError && error.code === 'ERR_STORE_FULL') throw error;
        throw this.#state.fail(error);
      })
      .finally(() => {
        this.#checkpointing = undefined;
      });
    return this.#checkpointing;
  }

  async #checkpoint(journal: AppliedCommits): Promise<void> {
    if (!this.#sync) await journal.syncNow();
    // The index now holds exactly the commits up to appliedSequence, all
    // durable (synced above); the snapshot keeps that state while writes go on.
    const sequence = journal.appliedSequence;
    if (sequence === this.#superblock.checkpointSeq) return;
    const snapshot = this.#index.snapshot();
    const replayBlock = this.#walSpace.replayBlockAfter(sequence);
    // Sized for the whole index up front (key + value + record header per
    // entry, from the last checkpoint's size) so it does not grow by copying.
    const writer = new ByteWriter(Math.max(CHECKPOINT_WRITER_INITIAL_BYTES, Math.ceil(this.#superblock.checkpointByteLength * 1.25)));
    beginCheckpointPayload(writer);
    snapshot.forEach((keyString, entry) => {
      writePut(writer, keyStringToBytes(keyString), entry.isString, entry.value instanceof Uint8Array ? { kind: 'inline', bytes: entry.value } : entry.value);
    });
    const payload = finishCheckpointPayload(writer, snapshot.size);
    const blockCount = frameBlockCount(payload.length, this.#blockSize);
    const extents = this.#space.allocateCheckpoint(blockCount);
    const frame = allocAligned(blockCount * this.#blockSize, Math.max(this.#device.ioAlignment, 4096));
    encodeFrame('checkpoint', sequence, this.#superblock.storeTag, payload, frame, this.#blockSize);
    let offset = 0;
    const writes: Promise<void>[] = [];
    this.#device.mark?.('checkpoint', sequence);
    for (const extent of extents) {
      const bytes = frame.subarray(offset, offset + extent.blockCount * this.#blockSize);
      for (let piece = 0; piece < bytes.length; piece += 64 << 20) {
        writes.push(this.#device.write(extent.startBlock * this.#blockSize + piece, [bytes.subarray(piece, Math.min(bytes.length, piece + (64 << 20)))]));
      }
      offset += bytes.length;
    }
    try {
      await Promise.all(writes);
      this.#device.mark?.('flush', sequence);
      await this.#device.sync();
    } catch (error) {
      // No superblock names these blocks: they are free again once every
      // write to them has settled (the store fails anyway).
      await Promise.allSettled(writes);
      this.#space.free(extents);
      throw error;
    }
    const previous = this.#superblock;
    const next: Superblock = {
      ...previous,
      generation: previous.generation + 1,
      checkpointSeq: sequence,
      walReplayBlock: replayBlock,
      checkpointByteLength: payload.length,
      checkpointBlockCount: blockCount,
      checkpointExtents: extents,
    };
    await this.writeSuperblockSlot(next, next.generation % 2);
    this.#superblock = next;
    this.#space.committed(extents);
    this.#checkpoints++;
    this.#walSpace.releaseThrough(sequence);
    // The old checkpoint is unreferenced once the new superblock is durable.
    if (previous.checkpointExtents.length > 0) this.#space.release(previous.checkpointExtents, journal.appliedSequence);
  }

  /** Zeroes WAL blocks, durably: the commits they belonged to are gone for good. */
  async eraseWalBlocks(walBlocks: number[]): Promise<void> {
    const zero = allocAligned(this.#blockSize, Math.max(this.#device.ioAlignment, 4096));
    this.#device.mark?.('erase');
    await Promise.all(walBlocks.map((walBlock) => this.#device.write((this.#superblock.walStartBlock + walBlock) * this.#blockSize, [zero])));
    this.#device.mark?.('flush');
    await this.#device.sync();
  }

  /** Writes `superblock` to `slot` (0 or 1) with a linked fdatasync. */
  async writeSuperblockSlot(superblock: Superblock, slot: number): Promise<void> {
    const block = allocAligned(this.#blockSize, Math.max(this.#device.ioAlignment, 4096));
    encodeSuperblock(superblock, block);
    this.#device.mark?.('superblock', superblock.generation);
    await this.#device.writeAndSync(slot * this.#blockSize, [block]);
  }
}
