// LabDevice (tools/lab/lab_device.ts): the store sees a round's results only
// once every operation of the round completed, all together in request
// order, whatever order the device answered in; marks go out in order with
// the IO they describe; the deferred task runs when nothing else is queued;
// a round's completions reach the observer's round brackets.
import assert from 'node:assert/strict';

import type { BlockDevice, IoPhase } from '../../engine/block_device.js';
import { LAB_STORE_TAG, LabDevice } from '../../tools/lab/lab_device.js';

/** A device whose operations complete when the test says, logging what it is asked. */
class ManualDevice implements BlockDevice {
  readonly sizeBytes = 1 << 20;
  readonly ioAlignment = 512;
  readonly trimAlignment = 1;
  readonly log: string[] = [];
  readonly waiting = new Map<string, () => void>();

  #operation(name: string): Promise<void> {
    this.log.push(`submit ${name}`);
    return new Promise<void>((resolve) => this.waiting.set(name, resolve));
  }

  complete(name: string): void {
    const resolve = this.waiting.get(name);
    assert.ok(resolve !== undefined, `${name} is not in flight`);
    this.waiting.delete(name);
    this.log.push(`complete ${name}`);
    resolve();
  }

  read(position: number): Promise<void> {
    return this.#operation(`read@${position}`);
  }

  readv(position: number): Promise<void> {
    return this.#operation(`readv@${position}`);
  }

  write(position: number): Promise<void> {
    return this.#operation(`write@${position}`);
  }

  writeAndSync(position: number): Promise<void> {
    return this.#operation(`writeAndSync@${position}`);
  }

  writeDsync(position: number): Promise<void> {
    return this.#operation(`writeDsync@${position}`);
  }

  sync(): Promise<void> {
    return this.#operation('sync');
  }

  trim(position: number): Promise<void> {
    return this.#operation(`trim@${position}`);
  }

  close(): Promise<void> {
    return this.#operation('close');
  }

  mark(phase: IoPhase, id?: number): void {
    this.log.push(`mark ${phase}${id === undefined ? '' : ` ${id}`}`);
  }
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function until(condition: () => boolean): Promise<void> {
  for (let turns = 0; !condition(); turns++) {
    assert.ok(turns < 1000, 'the condition never came true');
    await turn();
  }
}

describe('LabDevice', () => {
  it('settles a round only when all its operations completed, all at once, in request order', async () => {
    const inner = new ManualDevice();
    const rounds: string[] = [];
    const device = new LabDevice(inner, { beginRound: () => rounds.push('begin'), endRound: () => rounds.push('end') });
    const seen: string[] = [];
    const buffer = new Uint8Array(512);
    void device.write(0, [buffer]).then(() => seen.push('write@0'));
    void device.trim(512, 512).then(() => seen.push('trim@512'));
    void device.sync().then(() => seen.push('sync'));
    await until(() => inner.waiting.size === 3);
    assert.deepEqual(inner.log, ['submit write@0', 'submit trim@512', 'submit sync']);
    // Out of order, one at a time: nothing is seen before the last.
    inner.complete('sync');
    inner.complete('write@0');
    for (let i = 0; i < 10; i++) await turn();
    assert.deepEqual(seen, []);
    inner.complete('trim@512');
    await until(() => seen.length === 3);
    assert.deepEqual(seen, ['write@0', 'trim@512', 'sync']);
    assert.deepEqual(rounds, ['begin', 'end']);
  });

  it('submits what is requested during a round in the next one, with marks in order', async () => {
    const inner = new ManualDevice();
    const device = new LabDevice(inner);
    const buffer = new Uint8Array(512);
    device.mark('data');
    const first = device.write(0, [buffer]);
    device.mark('wal', 1);
    void device.writeAndSync(512, [buffer]);
    await until(() => inner.waiting.size === 2);
    // Asked for while the first round is in flight: the trim waits for the
    // next round; its mark, with nothing queued ahead of it, goes out now.
    device.mark('trim');
    void device.trim(1024, 512);
    device.mark('flush');
    for (let i = 0; i < 10; i++) await turn();
    assert.deepEqual(inner.log, ['mark data', 'submit write@0', 'mark wal 1', 'submit writeAndSync@512', 'mark trim']);
    inner.complete('write@0');
    inner.complete('writeAndSync@512');
    await first;
    await until(() => inner.waiting.has('trim@1024'));
    // The mark behind the queued trim went out after it.
    assert.deepEqual(inner.log.slice(-2), ['submit trim@1024', 'mark flush']);
  });

  it('runs a deferred task once nothing is queued, and not once cancelled', async () => {
    const inner = new ManualDevice();
    const device = new LabDevice(inner);
    const ran: string[] = [];
    const pending = device.read(0, new Uint8Array(512));
    device.deferTask(() => ran.push('deferred'), 100);
    const cancel = device.deferTask(() => ran.push('cancelled'), 100);
    cancel();
    await until(() => inner.waiting.size === 1);
    for (let i = 0; i < 10; i++) await turn();
    assert.deepEqual(ran, [], 'a deferred task waits while IO is queued or in flight');
    inner.complete('read@0');
    await pending;
    await until(() => ran.length > 0);
    for (let i = 0; i < 10; i++) await turn();
    assert.deepEqual(ran, ['deferred']);
  });

  it('gives every new store the same tag', () => {
    const device = new LabDevice(new ManualDevice());
    assert.equal(device.newStoreTag(), LAB_STORE_TAG);
    assert.equal(new LabDevice(new ManualDevice()).newStoreTag(), device.newStoreTag());
  });
});
