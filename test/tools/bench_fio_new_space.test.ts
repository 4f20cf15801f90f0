// The bench's fio reference into new space: a job once through a file whose
// space is allocated and never written (what a new store's blobs land in).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { IoUringActor } from '../../index.js';
import { prepareBenchFile, prepareFreshSpaceFile } from '../../tools/bench/bench_file.js';
import { fioArguments, ONCE_THROUGH } from '../../tools/bench/fio_runner.js';
import { WORKLOADS } from '../../tools/bench/workload_spec.js';

const MiB = 1 << 20;

describe('bench: fio into new space', () => {
  const spec = WORKLOADS.find((workload) => workload.id === 'write-fdatasync-1m-qd1')!;
  const file = { path: '/tmp/x:y.bin', sizeBytes: 4 * MiB };

  it('runs a job once through the file, as it is, with no time set', () => {
    const args = fioArguments(spec, file, ONCE_THROUGH);
    assert.ok(args.includes('--fallocate=none'), args.join(' '));
    assert.ok(args.includes(`--size=${4 * MiB}`));
    assert.ok(args.includes('--fdatasync=1'));
    assert.ok(!args.some((arg) => /^--(time_based|runtime|ramp_time)=/.test(arg)), args.join(' '));
  });

  it('flushes after every N writes where the job says so (concurrent durable writers sharing a flush)', () => {
    const shared = { ...WORKLOADS.find((workload) => workload.id === 'seqwrite-1m-qd8')!, operation: 'writeAndSync' as const, syncEvery: 8, id: 'shared' };
    const args = fioArguments(shared, file, ONCE_THROUGH);
    assert.ok(args.includes('--fdatasync=8') && args.includes('--iodepth=8'), args.join(' '));
    assert.ok(!args.includes('--fdatasync=1'));
  });

  it('runs a timed job for its time, on the file fio may lay out', () => {
    const args = fioArguments(spec, file, { warmupSeconds: 1, measureSeconds: 2 });
    assert.ok(args.includes('--time_based=1') && args.includes('--runtime=2000ms') && args.includes('--ramp_time=1000ms'), args.join(' '));
    assert.ok(!args.includes('--fallocate=none'));
  });

  it('makes a new file of the size with its space allocated and reading as zeros, replacing one of that name', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'ringstore-fio-'));
    const ring = IoUringActor.start({ fallback: 'threads' });
    try {
      const path = join(directory, 'new-space.bin');
      for (const sizeBytes of [2 * MiB, MiB]) {
        await prepareFreshSpaceFile({ path, sizeBytes }, ring);
        const made = await stat(path);
        assert.equal(made.size, sizeBytes);
        assert.ok(made.blocks * 512 >= sizeBytes, `${made.blocks * 512} bytes allocated of ${sizeBytes}`);
        const bytes = await readFile(path);
        assert.ok(bytes.every((byte) => byte === 0));
      }
    } finally {
      await ring.close();
      await rm(directory, { recursive: true, force: true });
    }
  });

  it("rewrites a bench file whose space is allocated but was never written, and reuses one it wrote (it took the first for written: every read row then measured the kernel's zeros; found by a review)", async () => {
    const directory = await mkdtemp(join(tmpdir(), 'ringstore-fio-'));
    const ring = IoUringActor.start({ fallback: 'threads' });
    try {
      const file = { path: join(directory, 'io.bin'), sizeBytes: 4 * MiB };
      await prepareFreshSpaceFile(file, ring);
      const logged: string[] = [];
      assert.equal(await prepareBenchFile(file, (line) => logged.push(line)), 'created', logged.join('\n'));
      assert.match(logged.join('\n'), /reading zeros/);
      assert.ok((await readFile(file.path)).some((byte) => byte !== 0));
      assert.equal(await prepareBenchFile(file, () => undefined), 'reused');
    } finally {
      await ring.close();
      await rm(directory, { recursive: true, force: true });
    }
  });
});
