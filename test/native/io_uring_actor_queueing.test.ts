// More operations than a handle has native slots: the overflow waits in the
// handle's FIFO and is dispatched as slots free up. Nothing is lost,
// duplicated or crossed over.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';

import { IoUringActor } from '../../index.js';
import { constants } from '../../native/addon.js';
import { BACKENDS, makeTempDir, pattern, removeTempDir } from './helpers.js';

/** Operations in flight at once: well past the handle's native slots. */
const OPERATION_COUNT = 10_000;
/** Record size; small so the test moves only ~5 MB. */
const RECORD_SIZE = 512;

describe('IoUringActor waiting FIFO', () => {
  it('is needed: the test issues more operations than a handle has native slots', () => {
    assert.ok(OPERATION_COUNT > constants.CLIENT_SLOT_COUNT);
  });

  for (const backend of BACKENDS) {
    describe(`with ${OPERATION_COUNT} concurrent mixed operations (${backend} backend)`, () => {
      let dir: string | undefined;
      let ring: IoUringActor | undefined;

      before(() => {
        dir = makeTempDir();
        // Every operation through the actor, whose counts are checked.
        ring = IoUringActor.start({ backend, directReads: false });
      });

      after(async () => {
        await ring?.close();
        removeTempDir(dir);
      });

      it('resolves every read and write with the right data', async () => {
        // Even operations read record i of region A (written beforehand by
        // node:fs); odd ones write record i of region B. Each record has its
        // own pattern, so a read served from the wrong offset or a write that
        // landed in the wrong place shows.
        const recordCount = OPERATION_COUNT / 2;
        const regionA = pattern(recordCount * RECORD_SIZE, 1);
        const regionBOffset = regionA.length;
        const path = `${dir}/mixed`;
        writeFileSync(path, regionA);
        const file = await ring!.open(path);
        const before = ring!.stats();

        const readTargets: Buffer[] = [];
        const writeSources: Buffer[] = [];
        const pending: Promise<number>[] = [];
        for (let i = 0; i < recordCount; i++) {
          const target = Buffer.alloc(RECORD_SIZE);
          readTargets.push(target);
          pending.push(file.read(target, i * RECORD_SIZE));
          const source = pattern(RECORD_SIZE, 1000 + i);
          writeSources.push(source);
          pending.push(file.write(source, regionBOffset + i * RECORD_SIZE));
        }
        // Completions are delivered on the event loop, so none has arrived
        // yet: exactly the overflow is waiting in JS.
        assert.equal(ring!.stats().waitingInJs, OPERATION_COUNT - constants.CLIENT_SLOT_COUNT);

        const results = await Promise.all(pending);
        assert.equal(results.length, OPERATION_COUNT);
        results.forEach((result, index) => assert.equal(result, RECORD_SIZE, `operation ${index}`));
        readTargets.forEach((target, i) => {
          assert.ok(target.equals(regionA.subarray(i * RECORD_SIZE, (i + 1) * RECORD_SIZE)), `read of record ${i}`);
        });
        const regionB = readFileSync(path).subarray(regionBOffset);
        assert.equal(regionB.length, recordCount * RECORD_SIZE);
        writeSources.forEach((source, i) => {
          assert.ok(regionB.subarray(i * RECORD_SIZE, (i + 1) * RECORD_SIZE).equals(source), `write of record ${i}`);
        });

        const after = ring!.stats();
        assert.equal(after.submitted - before.submitted, OPERATION_COUNT);
        assert.equal(after.completed - before.completed, OPERATION_COUNT);
        assert.equal(after.waitingInJs, 0);
        assert.equal(after.inFlight, 0);
        await file.close();
      });

      it('keeps working after the FIFO drained', async () => {
        const file = await ring!.open(`${dir}/after`, { create: true });
        const data = pattern(RECORD_SIZE, 2);
        assert.equal(await file.write(data, 0), RECORD_SIZE);
        const back = Buffer.alloc(RECORD_SIZE);
        assert.equal(await file.read(back, 0), RECORD_SIZE);
        assert.ok(back.equals(data));
        await file.close();
      });
    });
  }
});
