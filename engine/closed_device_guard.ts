// ClosedDeviceGuard: the store's view of its BlockDevice, which lets no IO
// through once the store is closed. BlockDevice promises its owner that no
// call follows close(), and a store's late IO has more than one source: a
// read that ends after close() releases blocks whose trims then start, a
// getMany() or a scan's read-ahead goes on with the next page. A device of
// the user's own that stays usable after close() (a file another store
// opens next) would then see a trim zero blocks that store had reused
// (found by a review: an acknowledged write lost). One choke point here
// instead of a check at every caller: after shut(), each IO call rejects
// with ERR_STORE_CLOSED, which every reader and the trims already handle.
//
// Its flushes (fdatasync, write + fdatasync, RWF_DSYNC writes) go through a
// FlushLedger: one that succeeds while others are in flight waits for them
// and fails if one fails, and none is issued after a failure.
import type { BlockDevice, IoPhase } from './block_device.js';
import { FlushLedger } from './flush_ledger.js';
import { StoreError } from './store_error.js';

export class ClosedDeviceGuard implements BlockDevice {
  readonly #device: BlockDevice;
  #shut = false;
  readonly #flushes = new FlushLedger();
  readonly grow?: (sizeBytes: number) => Promise<void>;
  readonly newStoreTag?: () => number;
  readonly deferTask?: (task: () => void, delayMs: number) => () => void;

  constructor(device: BlockDevice) {
    this.#device = device;
    // The optional methods are undefined here where the device has none (callers test for that).
    if (device.grow !== undefined) this.grow = (sizeBytes) => (this.#shut ? closedRejection() : device.grow!(sizeBytes));
    if (device.newStoreTag !== undefined) this.newStoreTag = () => device.newStoreTag!();
    if (device.deferTask !== undefined) this.deferTask = (task, delayMs) => device.deferTask!(task, delayMs);
  }

  /** The store is closed: from now on every IO call rejects (close() still reaches the device; the store calls it once). */
  shut(): void {
    this.#shut = true;
  }

  get sizeBytes(): number {
    return this.#device.sizeBytes;
  }

  get ioAlignment(): number {
    return this.#device.ioAlignment;
  }

  get trimAlignment(): number {
    return this.#device.trimAlignment;
  }

  get blank(): boolean | undefined {
    return this.#device.blank;
  }

  get sizeBytesMax(): number | undefined {
    return this.#device.sizeBytesMax;
  }

  read(position: number, buffer: Uint8Array): Promise<void> {
    return this.#shut ? closedRejection() : this.#device.read(position, buffer);
  }

  readv(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#shut ? closedRejection() : this.#device.readv(position, buffers);
  }

  write(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#shut ? closedRejection() : this.#device.write(position, buffers);
  }

  writeAndSync(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#shut ? closedRejection() : this.#flushes.run(() => this.#device.writeAndSync(position, buffers));
  }

  writeDsync(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#shut ? closedRejection() : this.#flushes.run(() => this.#device.writeDsync(position, buffers));
  }

  sync(): Promise<void> {
    return this.#shut ? closedRejection() : this.#flushes.run(() => this.#device.sync());
  }

  trim(position: number, length: number): Promise<void> {
    return this.#shut ? closedRejection() : this.#device.trim(position, length);
  }

  close(): Promise<void> {
    this.#shut = true;
    return this.#device.close();
  }

  mark(phase: IoPhase, id?: number): void {
    // A trace's marks do no IO: they pass whatever the state.
    this.#device.mark?.(phase, id);
  }
}

function closedRejection(): Promise<never> {
  return Promise.reject(new StoreError('ERR_STORE_CLOSED', 'the store is closed'));
}
