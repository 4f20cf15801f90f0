// ClosedDeviceGuard: after shut() no IO reaches the device; every kind of
// flush (fdatasync, linked write + fdatasync, RWF_DSYNC write) goes through
// its FlushLedger, so a flush that succeeds while an earlier one is in
// flight fails with it.
import assert from 'node:assert/strict';

import { ClosedDeviceGuard } from '../../engine/closed_device_guard.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { StoreError } from '../../engine/store_error.js';

function eio(): Error {
  return Object.assign(new Error('EIO: i/o error, fdatasync'), { errno: -5, code: 'EIO', syscall: 'fdatasync' });
}

/** A simulated device whose next sync() is held until failed. */
class HeldSyncDevice extends SimulatedDevice {
  #held: { reached: () => void; released: Promise<void> } | undefined;

  holdNextSync(): { reached: Promise<void>; fail: () => void } {
    let reached!: () => void;
    let fail!: () => void;
    const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
    const released = new Promise<void>((resolve) => (fail = resolve));
    this.#held = { reached, released };
    return { reached: reachedPromise, fail };
  }

  override async sync(): Promise<void> {
    const held = this.#held;
    if (held !== undefined) {
      this.#held = undefined;
      held.reached();
      await held.released;
      throw eio();
    }
    return super.sync();
  }
}

async function turns(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('ClosedDeviceGuard', () => {
  for (const flush of ['writeAndSync', 'writeDsync'] as const) {
    it(`fails a ${flush} that succeeded while an earlier fdatasync was in flight, when that one fails`, async () => {
      const device = new HeldSyncDevice({ sizeBytes: 1 << 20, ioAlignment: 4096 });
      const guard = new ClosedDeviceGuard(device);
      const held = device.holdNextSync();
      const earlier = guard.sync();
      earlier.catch(() => undefined);
      await held.reached;
      const syncsBefore = device.counts.syncs;
      let settled = false;
      const later = guard[flush](0, [new Uint8Array(4096)]).finally(() => (settled = true));
      later.catch(() => undefined);
      // writeAndSync's own flush is a sync() of the simulated device (not held: the hold was taken); writeDsync counts one.
      while (device.counts.syncs === syncsBefore) await turns(1);
      await turns(20);
      assert.equal(settled, false, 'held while the earlier flush may fail');
      held.fail();
      await assert.rejects(earlier, { code: 'EIO' });
      await assert.rejects(later, { code: 'EIO' });
      // And no flush is issued after it.
      const syncsAfter = device.counts.syncs;
      await assert.rejects(guard.sync(), { code: 'EIO' });
      assert.equal(device.counts.syncs, syncsAfter);
      await guard.close();
    });
  }

  it('refuses every IO call with ERR_STORE_CLOSED after shut()', async () => {
    const device = new SimulatedDevice({ sizeBytes: 1 << 20, ioAlignment: 4096 });
    const guard = new ClosedDeviceGuard(device);
    guard.shut();
    const block = new Uint8Array(4096);
    for (const call of [() => guard.read(0, block), () => guard.write(0, [block]), () => guard.writeAndSync(0, [block]), () => guard.writeDsync(0, [block]), () => guard.sync(), () => guard.trim(0, 4096)]) {
      await assert.rejects(call(), (error: unknown) => error instanceof StoreError && error.code === 'ERR_STORE_CLOSED');
    }
    assert.equal(device.counts.writes + device.counts.syncs + device.counts.reads + device.counts.trims, 0);
    await guard.close();
  });
});
