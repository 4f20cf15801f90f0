// ReadHoldingDevice: a BlockDevice over a simulated one that holds back the
// reads a test picks while `holding`, until release(): what makes "this
// happens while that read is in flight" certain rather than timed.
import type { BlockDevice } from '../../engine/block_device.js';
import type { SimulatedDevice } from '../../engine/simulated_device.js';

export class ReadHoldingDevice implements BlockDevice {
  holding = false;
  readonly #device: SimulatedDevice;
  /** Which reads `holding` holds back, by their length in bytes. */
  readonly #holds: (lengthBytes: number) => boolean;
  #held: (() => void)[] = [];
  readonly sizeBytes: number;
  readonly ioAlignment: number;
  readonly trimAlignment: number;
  readonly blank: boolean | undefined;

  constructor(device: SimulatedDevice, holds: (lengthBytes: number) => boolean = () => true) {
    this.#device = device;
    this.#holds = holds;
    this.sizeBytes = device.sizeBytes;
    this.ioAlignment = device.ioAlignment;
    this.trimAlignment = device.trimAlignment;
    this.blank = device.blank;
  }

  /** Reads waiting for release(). */
  get heldCount(): number {
    return this.#held.length;
  }

  /** Lets every held read go on (holding stays as it is). */
  release(): void {
    for (const resume of this.#held.splice(0)) resume();
  }

  async #gate(lengthBytes: number): Promise<void> {
    if (this.holding && this.#holds(lengthBytes)) await new Promise<void>((resolve) => this.#held.push(resolve));
  }

  async read(position: number, buffer: Uint8Array): Promise<void> {
    await this.#gate(buffer.length);
    return this.#device.read(position, buffer);
  }
  async readv(position: number, buffers: Uint8Array[]): Promise<void> {
    await this.#gate(buffers.reduce((sum, buffer) => sum + buffer.length, 0));
    return this.#device.readv(position, buffers);
  }
  write(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#device.write(position, buffers);
  }
  writeAndSync(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#device.writeAndSync(position, buffers);
  }
  writeDsync(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#device.writeDsync(position, buffers);
  }
  sync(): Promise<void> {
    return this.#device.sync();
  }
  trim(position: number, length: number): Promise<void> {
    return this.#device.trim(position, length);
  }
  close(): Promise<void> {
    return this.#device.close();
  }
}
