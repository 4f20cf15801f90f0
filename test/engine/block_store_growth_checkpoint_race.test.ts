// Growth racing checkpoints (found by a review): a checkpoint that started
// while a growth wrote its superblock once took the larger block count with
// the allocator still at the old size, so its free set recorded every added
// block as in use — leaked for good after a reopen. The growth now hands the
// blocks to the allocator in the step that makes its superblock current
// (Checkpointer.grow). Flushes are held on a simulated device to make the
// timing happen every run.
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { pattern } from './helpers.js';

const BLOCK_SIZE = 4096;
const VALUE_BYTES = 16 * BLOCK_SIZE;

/** A simulated device whose next flush of a given kind can be held until released. */
class GatedDevice extends SimulatedDevice {
  /** Called at the first device.grow (the start of a growth). */
  onFirstGrow: (() => void) | undefined;
  #grows = 0;
  #holdKind: 'checkpoint' | 'growth' | undefined;
  #armed = false;
  #held: { resolve: () => void; reached: Promise<void>; reachedResolve: () => void } | undefined;

  /** Holds the next flush of `kind` (a checkpoint's: mark('flush', seq); a growth's: mark('flush') with no id). */
  holdNextFlush(kind: 'checkpoint' | 'growth'): { reached: Promise<void>; release: () => void } {
    this.#holdKind = kind;
    let reachedResolve!: () => void;
    const reached = new Promise<void>((resolve) => (reachedResolve = resolve));
    let releaseResolve!: () => void;
    const released = new Promise<void>((resolve) => (releaseResolve = resolve));
    this.#held = { resolve: releaseResolve, reached, reachedResolve };
    (this.#held as unknown as { released: Promise<void> }).released = released;
    return { reached, release: releaseResolve };
  }

  #lastPhase = '';

  mark(phase: string, id?: number): void {
    const lastPhase = this.#lastPhase;
    this.#lastPhase = phase;
    if (phase !== 'flush' || this.#holdKind === undefined) return;
    // A checkpoint's flush follows its writes (mark 'checkpoint'); a growth's has no id and follows no erase.
    if (this.#holdKind === 'checkpoint' ? id !== undefined && lastPhase === 'checkpoint' : id === undefined && lastPhase !== 'erase') {
      this.#armed = true;
      this.#holdKind = undefined;
    }
  }

  override async sync(): Promise<void> {
    if (this.#armed) {
      this.#armed = false;
      const held = this.#held!;
      held.reachedResolve();
      await (held as unknown as { released: Promise<void> }).released;
    }
    return super.sync();
  }

  override async grow(sizeBytes: number): Promise<void> {
    if (this.#grows++ === 0 && this.onFirstGrow !== undefined) {
      this.onFirstGrow();
      // The file system takes a moment: the checkpoint just asked for starts meanwhile.
      await turns(3);
    }
    return super.grow(sizeBytes);
  }
}

async function turns(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

describe('BlockStore growth racing a checkpoint', function () {
  this.timeout(120_000);

  it('leaks no block when a checkpoint starts while a queued growth writes its superblock (verified after a reopen)', async () => {
    const device = new GatedDevice({ sizeBytes: 4 << 20, sizeBytesMax: 64 << 20 });
    const store = await BlockStore.open('race', { device, create: true, encoding: 'binary' });
    let c1Held = false;
    let c2: Promise<void> | undefined;
    let orchestration: Promise<void> | undefined;
    device.onFirstGrow = () => {
      // The growth's file extension is under way: start a checkpoint (C1) and
      // hold its flush, so the growth's superblock write queues behind it.
      const c1Flush = device.holdNextFlush('checkpoint');
      const c1 = store.checkpoint();
      orchestration = (async () => {
        await Promise.race([c1Flush.reached, turns(50)]);
        c1Held = true;
        await turns(5); // the growth now waits for C1 (Checkpointer.#exclusively)
        const growthFlush = device.holdNextFlush('growth');
        c1Flush.release();
        await c1;
        await growthFlush.reached; // the growth's superblock write is under way (G)
        // A commit after C1's freeze, then a checkpoint that joins G and
        // starts right after it. The commit's flush (an RWF_DSYNC write),
        // issued while G's is in flight, is acknowledged only once G's has
        // succeeded (FlushLedger): the checkpoint, which waits for the
        // commits ahead of it, is asked for now and starts once G's flush
        // is released.
        const afterC1 = store.put('after-c1', pattern(100, 1));
        await turns(2);
        c2 = store.checkpoint();
        await turns(2);
        growthFlush.release();
        await afterC1;
        await c2;
      })();
    };
    for (let i = 0; device.sizeBytes === 4 << 20 && orchestration === undefined && i < 200; i++) {
      await store.put(`value-${i}`, pattern(VALUE_BYTES, i));
    }
    assert.ok(orchestration !== undefined, 'the store never grew');
    await orchestration;
    assert.ok(c1Held && c2 !== undefined);
    assert.ok(store.stats().growths >= 1);
    await store.verifyIntegrity();
    await store.close();
    const reopened = await BlockStore.open('race', { device: device.crash(), encoding: 'binary' });
    try {
      // Every block past the old end is free: the checkpoint that followed the growth must not mark them in use.
      await reopened.verifyIntegrity();
    } finally {
      await reopened.close();
    }
  });
});
