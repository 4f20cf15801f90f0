// IoUringActor#stats(): the actor's counters and latency histograms.
import assert from 'node:assert/strict';

import { IoUringActor, type LatencySummaryUs, type RingStats } from '../../index.js';
import { BACKENDS, makeTempDir, removeTempDir } from './helpers.js';

const STATS_KEYS = [
  'backend',
  'submitted',
  'completed',
  'batches',
  'sqesSubmitted',
  'meanBatchSize',
  'waits',
  'inFlight',
  'continuations',
  'waitingInJs',
  'directWrites',
  'directReads',
  'directContinuations',
  'queuedUs',
  'kernelUs',
  'actorSpin',
  'completionSpin',
  'loneReadRoute',
].sort();
const SPIN_KEYS = ['adaptive', 'spinning', 'probeCount', 'spinWinCount'].sort();
const SUMMARY_KEYS = ['count', 'p50', 'p99', 'max', 'mean'].sort();

function assertSummary(summary: LatencySummaryUs, name: string): void {
  assert.deepEqual(Object.keys(summary).sort(), SUMMARY_KEYS, name);
  for (const key of SUMMARY_KEYS) {
    const value = summary[key as keyof LatencySummaryUs];
    assert.ok(typeof value === 'number' && Number.isFinite(value) && value >= 0, `${name}.${key} is ${value}`);
  }
  assert.ok(Number.isInteger(summary.count), `${name}.count`);
  if (summary.count > 0) {
    // Percentiles come from histogram buckets (about 6% wide), so they are
    // ordered but may sit a bucket's half-width above the exact maximum.
    assert.ok(summary.p50 <= summary.p99, `${name}: p50 ${summary.p50} <= p99 ${summary.p99}`);
  } else {
    assert.deepEqual([summary.p50, summary.p99, summary.max, summary.mean], [0, 0, 0, 0], `${name} of nothing`);
  }
}

function assertShape(stats: RingStats, backend: string): void {
  assert.deepEqual(Object.keys(stats).sort(), STATS_KEYS);
  assert.equal(stats.backend, backend);
  for (const key of ['submitted', 'completed', 'batches', 'sqesSubmitted', 'waits', 'inFlight', 'continuations', 'waitingInJs', 'directWrites', 'directReads', 'directContinuations'] as const) {
    assert.ok(Number.isInteger(stats[key]) && stats[key] >= 0, `${key} is ${stats[key]}`);
  }
  assert.ok(stats.completed <= stats.submitted);
  assert.equal(stats.meanBatchSize, stats.batches > 0 ? stats.submitted / stats.batches : 0);
  assertSummary(stats.queuedUs, 'queuedUs');
  assertSummary(stats.kernelUs, 'kernelUs');
  for (const name of ['actorSpin', 'completionSpin'] as const) {
    const spin = stats[name];
    assert.deepEqual(Object.keys(spin).sort(), SPIN_KEYS, name);
    assert.ok(typeof spin.adaptive === 'boolean' && typeof spin.spinning === 'boolean', name);
    assert.ok(Number.isInteger(spin.probeCount) && spin.spinWinCount >= 0 && spin.spinWinCount <= spin.probeCount, name);
  }
  assert.deepEqual(Object.keys(stats.loneReadRoute).sort(), ['actorWinCount', 'direct', 'probeCount']);
  assert.ok(typeof stats.loneReadRoute.direct === 'boolean');
  assert.ok(Number.isInteger(stats.loneReadRoute.probeCount) && stats.loneReadRoute.actorWinCount >= 0 && stats.loneReadRoute.actorWinCount <= stats.loneReadRoute.probeCount);
  // The thread pool never busy-polls on the actor's side, nor reads beside it.
  if (backend === 'threads') assert.equal(stats.loneReadRoute.direct, false);
  if (backend === 'threads') assert.equal(stats.actorSpin.spinning, false);
}

for (const backend of BACKENDS) {
  describe(`IoUringActor#stats() (${backend} backend)`, () => {
    let dir: string | undefined;
    let ring: IoUringActor | undefined;

    before(() => {
      dir = makeTempDir();
      // Every operation through the actor, whose counters are checked (a
      // lone read goes through this thread's own ring: directReads counts it).
      ring = IoUringActor.start({ backend, directReads: false });
    });

    after(async () => {
      await ring?.close();
      removeTempDir(dir);
    });

    it('has the documented shape on a fresh ring, with nothing counted', () => {
      const stats = ring!.stats();
      assertShape(stats, backend);
      assert.equal(stats.submitted, 0);
      assert.equal(stats.completed, 0);
      assert.equal(stats.inFlight, 0);
      assert.equal(stats.waitingInJs, 0);
      assert.equal(stats.queuedUs.count, 0);
      assert.equal(stats.kernelUs.count, 0);
    });

    it('counts each operation once in the counters and in both latency histograms', async () => {
      const file = await ring!.open(`${dir}/counted`, { create: true });
      const before = ring!.stats();
      const operationCount = 100;
      await Promise.all(Array.from({ length: operationCount / 2 }, (_, i) => file.write(Buffer.alloc(512, i), i * 512)));
      await Promise.all(Array.from({ length: operationCount / 2 }, (_, i) => file.read(Buffer.alloc(512), i * 512)));
      const after = ring!.stats();
      assertShape(after, backend);
      assert.equal(after.submitted - before.submitted, operationCount);
      assert.equal(after.completed - before.completed, operationCount);
      assert.equal(after.queuedUs.count - before.queuedUs.count, operationCount);
      assert.equal(after.kernelUs.count - before.kernelUs.count, operationCount);
      assert.ok(after.batches > before.batches);
      assert.ok(after.sqesSubmitted - before.sqesSubmitted >= operationCount, 'at least one SQE per command');
      assert.equal(after.inFlight, 0);
      assert.equal(after.waitingInJs, 0);
      await file.close();
    });

    it('counts a writeAndSync as one command', async () => {
      const file = await ring!.open(`${dir}/linked`, { create: true });
      const before = ring!.stats();
      await file.writeAndSync(Buffer.alloc(512, 1), 0);
      const after = ring!.stats();
      assert.equal(after.submitted - before.submitted, 1);
      assert.equal(after.kernelUs.count - before.kernelUs.count, 1);
      if (backend === 'io_uring') {
        assert.ok(after.sqesSubmitted - before.sqesSubmitted >= 2, 'the write and its linked fdatasync are two SQEs');
      }
      await file.close();
    });

    it('counts operations refused by argument checks nowhere', async () => {
      const file = await ring!.open(`${dir}/refused`, { create: true });
      const before = ring!.stats();
      await file.write('not a buffer' as unknown as Buffer, 0).catch(() => {});
      await file.read(Buffer.alloc(8), -1).catch(() => {});
      const after = ring!.stats();
      assert.equal(after.submitted, before.submitted);
      assert.equal(after.queuedUs.count, before.queuedUs.count);
      await file.close();
    });
  });
}
