// Corruption explorer: damage at rest. Takes images of the traced workload
// (at crash points where everything submitted so far reached the media) and
// damages it — a flipped bit, a garbage sector, a zeroed sector, a write the
// device acknowledged but lost (one whole write of the trace missing), a
// write that landed on the wrong blocks (misdirected) — in every structure:
// superblock copies, WAL, checkpoint, data.
// Then opens the store and reads every acknowledged value. The rule: a read
// returns the right bytes or fails with ERR_STORE_CORRUPT (opening may fail
// with it too); never wrong data, never another error, never a crash.
//
// Losses are counted apart from wrong reads: damage to the last commit of
// the log is indistinguishable from a torn write and drops it (docs/durability.md).
import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { buildImage, crashPointAt, SECTOR_SIZE, type CrashPoint } from './crash_states.js';
import { keyId, sameValue, type WorkloadOperation } from './oracle.js';
import { seededRandom } from './seeded_random.js';
import type { TracedWorkload } from './workload.js';

export type Damage = 'bitflip' | 'garbage-sector' | 'zero-sector' | 'lost-write' | 'misdirected-write';
const DAMAGES: readonly Damage[] = ['bitflip', 'garbage-sector', 'zero-sector', 'lost-write', 'misdirected-write'];

export interface CorruptionReport {
  trials: number;
  byDamage: Record<Damage, number>;
  /** Trials where opening the store was refused with ERR_STORE_CORRUPT. */
  refusedOpens: number;
  /**
   * Trials where the damage destroyed every sign of a store (both superblock
   * copies and the WAL head zeroed or overwritten, e.g. a lost superblock
   * write plus a write misdirected over the start): open says
   * ERR_STORE_NOT_FOUND. No wrong data, but not detected as damage either
   * (docs/durability.md, limits).
   */
  unrecognised: number;
  /** Reads that failed with ERR_STORE_CORRUPT. */
  detectedReads: number;
  /** Reads that returned bytes other than written: must stay 0. */
  wrongReads: number;
  /** Acknowledged values missing with no error (the documented last-commit limit). */
  silentLosses: number;
  /** Any other failure (an unexpected error): must stay 0. */
  failures: string[];
  durationMs: number;
}

export async function exploreCorruption(workload: TracedWorkload, options: { trials: number; seed: number }): Promise<CorruptionReport> {
  const started = performance.now();
  const { trace, base, operations } = workload;
  const blockSize = workload.store.blockSize;
  const random = seededRandom(options.seed);
  // Images where nothing is pending: every acknowledged write is on the media.
  const settled: { point: CrashPoint; image: Uint8Array; written: Set<number> }[] = [];
  for (let count = 1; count <= trace.events.length; count++) {
    const event = trace.events[count - 1];
    if (event.type !== 'ack') continue;
    const point = crashPointAt(trace, count);
    if (point.pending.some((operation) => operation.completedAt === undefined)) continue;
    const image = buildImage(trace, base, point, new Map(point.pending.map((operation) => [operation, 'all'])));
    // Blocks that hold something: damage to never-written space proves nothing.
    const written = new Set<number>();
    for (const operation of [...point.durable, ...point.pending]) {
      if (operation.kind === 'trim') continue;
      for (let block = Math.floor(operation.position / blockSize); block * blockSize < operation.position + operation.length; block++) written.add(block);
    }
    settled.push({ point, image, written });
  }
  const picks = settled.filter((_, i) => i % Math.max(1, Math.floor(settled.length / 16)) === 0);
  const report: CorruptionReport = {
    trials: 0,
    byDamage: { bitflip: 0, 'garbage-sector': 0, 'zero-sector': 0, 'lost-write': 0, 'misdirected-write': 0 },
    refusedOpens: 0,
    unrecognised: 0,
    detectedReads: 0,
    wrongReads: 0,
    silentLosses: 0,
    failures: [],
    durationMs: 0,
  };
  for (let trial = 0; trial < options.trials && picks.length > 0; trial++) {
    const { point, image, written } = picks[trial % picks.length];
    const blocks = [...written];
    let block = blocks[Math.floor(random() * blocks.length)];
    let damaged: Uint8Array = Uint8Array.prototype.slice.call(image);
    const damage: Damage = DAMAGES[Math.floor(random() * DAMAGES.length)];
    const sectorsPerBlock = blockSize / SECTOR_SIZE;
    const sectorStart = block * blockSize + Math.floor(random() * sectorsPerBlock) * SECTOR_SIZE;
    const writes = point.durable.filter((operation) => operation.kind !== 'trim' && operation.dataOffset >= 0);
    if ((damage === 'lost-write' || damage === 'misdirected-write') && writes.length > 0) {
      // The device acknowledged (and flushed) this write but it never
      // reached its blocks: they keep what the image had without it.
      const victim = writes[Math.floor(random() * writes.length)];
      block = Math.floor(victim.position / blockSize);
      damaged = buildImage(trace, base, { ...point, durable: point.durable.filter((operation) => operation !== victim) }, new Map(point.pending.map((operation) => [operation, 'all'])));
      if (damage === 'misdirected-write') {
        // ... and landed on other blocks instead, block-aligned.
        const blockCount = Math.ceil(victim.length / blockSize);
        const target = blocks[Math.floor(random() * blocks.length)];
        if (target !== block && (target + blockCount) * blockSize <= damaged.length) damaged.set(trace.dataOf(victim), target * blockSize);
      }
    } else if (damage === 'bitflip') {
      const byte = block * blockSize + Math.floor(random() * blockSize);
      damaged[byte] ^= 1 << Math.floor(random() * 8);
    } else if (damage === 'garbage-sector') {
      for (let i = 0; i < SECTOR_SIZE; i++) damaged[sectorStart + i] = Math.floor(random() * 256);
    } else if (damage === 'zero-sector') {
      damaged.fill(0, sectorStart, sectorStart + SECTOR_SIZE);
    }
    report.trials++;
    report.byDamage[damage]++;
    let shortest = 0;
    for (let index = 0; index < point.eventCount; index++) {
      const event = trace.events[index];
      if (event.type === 'ack') shortest = Math.max(shortest, event.operation + 1);
    }
    await checkDamaged(damaged, workload, expectations(operations, shortest), report, `${damage} in block ${block} at event ${point.eventCount}`);
  }
  report.durationMs = performance.now() - started;
  return report;
}

/**
 * What a read of each key may return on an undamaged image: the value after
 * the shortest prefix of commit order holding every acknowledged operation
 * (`shortest`), or a value a later operation wrote (it may have committed
 * too). `earlier` are values the key held before: reading one of those is a
 * loss (a rollback), not wrong data.
 */
interface KeyExpectation {
  key: WorkloadOperation['writes'][number][0];
  admissible: unknown[];
  earlier: unknown[];
}

function expectations(operations: readonly WorkloadOperation[], shortest: number): Map<string, KeyExpectation> {
  const byKey = new Map<string, KeyExpectation>();
  for (let index = 0; index < operations.length; index++) {
    if (operations[index].refused) continue;
    for (const [key, value] of operations[index].writes) {
      const id = keyId(key);
      let expectation = byKey.get(id);
      if (expectation === undefined) {
        expectation = { key, admissible: [undefined], earlier: [] };
        byKey.set(id, expectation);
      }
      if (index < shortest) {
        expectation.earlier.push(...expectation.admissible);
        expectation.admissible = [value];
      } else {
        expectation.admissible.push(value);
      }
    }
  }
  return byKey;
}

async function checkDamaged(
  image: Uint8Array,
  workload: TracedWorkload,
  expected: Map<string, KeyExpectation>,
  report: CorruptionReport,
  what: string,
): Promise<void> {
  let store: BlockStore;
  try {
    store = await BlockStore.open('damaged', { device: new SimulatedDevice({ sizeBytes: image.length }, image), encoding: workload.store.encoding });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_STORE_CORRUPT') report.refusedOpens++;
    else if (code === 'ERR_STORE_NOT_FOUND') report.unrecognised++;
    else report.failures.push(`${what}: open failed with ${String(error)}`);
    return;
  }
  try {
    for (const [id, { key, admissible, earlier }] of expected) {
      try {
        const actual = await store.get(key);
        if (admissible.some((value) => sameValue(value, actual))) continue;
        if (actual === undefined || earlier.some((value) => sameValue(value, actual))) report.silentLosses++;
        else {
          report.wrongReads++;
          report.failures.push(`${what}: ${id.slice(1)} read back data that was never written to it`);
        }
      } catch (error) {
        if ((error as { code?: string }).code === 'ERR_STORE_CORRUPT') report.detectedReads++;
        else report.failures.push(`${what}: get(${id.slice(1)}) failed with ${String(error)}`);
      }
    }
  } finally {
    await store.close().catch(() => undefined);
  }
}
