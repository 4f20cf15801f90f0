#!/usr/bin/env node
// The `ringstore` command line.
//
//   ringstore inspect PATH   superblocks, geometry, checkpoint, WAL, key count
//   ringstore fsck PATH      independent check (format/ only); exit 1 on damage
//   ringstore help
//
// Both read the store image with plain positional reads (node:fs), never
// through the engine, so they work on a store the engine refuses to open.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

import { fsckImage, type FsckReport, type ImageReader } from './fsck.js';
import { exploreCorruption } from './lab/corruption_explorer.js';
import { exploreCrashStates } from './lab/crash_explorer.js';
import { exploreIoFaults } from './lab/fault_explorer.js';
import { runBuiltinWorkload, WORKLOAD_BLOCK_SIZE } from './lab/builtin_workload.js';

const USAGE = `usage:
  ringstore inspect PATH   print the store's superblock, geometry, checkpoint and WAL state
  ringstore fsck PATH      check a store independently of the engine (exit 1 if damaged)
  ringstore crash-test [--states N] [--seed N] [--scale X] [--corruption N] [--faults N]
                           trace the built-in workload on the real IO path, check N crash
                           states (default 20000), N damaged images (default 0), and IO
                           faults at each of the first N operations of every kind
                           (default 0); exit 1 on any violation
  ringstore help`;

/** Bytes one positional read may ask for; larger reads are split. */
const READ_PIECE_BYTES = 64 << 20;

function openImage(path: string): { image: ImageReader; close: () => void } {
  const fd = openSync(path, 'r');
  const stat = fstatSync(fd);
  let sizeBytes = stat.size;
  if (stat.isBlockDevice()) {
    // fstat reports 0 for a block device: find its end by reading.
    sizeBytes = blockDeviceSize(fd);
  }
  return {
    image: {
      sizeBytes,
      read(position: number, length: number): Uint8Array {
        const out = Buffer.alloc(length);
        let done = 0;
        while (done < length) {
          const bytes = readSync(fd, out, done, Math.min(READ_PIECE_BYTES, length - done), position + done);
          if (bytes === 0) break;
          done += bytes;
        }
        return out;
      },
    },
    close: () => closeSync(fd),
  };
}

function blockDeviceSize(fd: number): number {
  // Node has no lseek(SEEK_END) or BLKGETSIZE64: find the last readable byte
  // by doubling, then bisecting. `readable` is always a readable offset and
  // `unreadable` never is.
  const probe = Buffer.alloc(1);
  const canRead = (offset: number): boolean => readSync(fd, probe, 0, 1, offset) === 1;
  let readable = 0;
  let unreadable = 2 ** 20;
  while (canRead(unreadable)) {
    readable = unreadable;
    unreadable *= 2;
  }
  while (readable + 1 < unreadable) {
    const middle = Math.floor((readable + unreadable) / 2);
    if (canRead(middle)) readable = middle;
    else unreadable = middle;
  }
  return readable + 1;
}

function printReport(report: FsckReport, verbose: boolean): void {
  const superblock = report.superblock;
  if (superblock !== undefined && verbose) {
    const mib = (blocks: number): string => ((blocks * superblock.blockSize) / 2 ** 20).toFixed(1);
    console.log(`format version ${superblock.formatVersion}, block size ${superblock.blockSize} B, store tag 0x${superblock.storeTag.toString(16)}`);
    console.log(`blocks: ${superblock.blockCount} (${mib(superblock.blockCount)} MiB); WAL blocks ${superblock.walStartBlock}..${superblock.walStartBlock + superblock.walBlockCount - 1} (${mib(superblock.walBlockCount)} MiB); data from block ${superblock.dataStartBlock}`);
    console.log(`superblock generation ${superblock.generation}`);
    console.log(
      superblock.checkpointExtents.length === 0
        ? 'checkpoint: none yet'
        : `checkpoint: through commit ${superblock.checkpointSeq}, ${superblock.checkpointByteLength} bytes in ${superblock.checkpointBlockCount} blocks (${superblock.checkpointExtents.map((e) => `${e.startBlock}+${e.blockCount}`).join(', ')})`,
    );
    console.log(`WAL: replay from WAL block ${superblock.walReplayBlock}, ${report.walCommits} commits after the checkpoint${report.tornTail === undefined ? '' : `; ends at a torn commit: ${report.tornTail}`}`);
  }
  console.log(`keys: ${report.keys} (${report.extentValues} in data extents, ${report.referencedBlocks} blocks referenced)`);
  for (const warning of report.warnings) console.log(`warning: ${warning}`);
  for (const error of report.errors) console.log(`error: ${error}`);
}

function flag(argv: string[], name: string, fallback: number): number {
  const index = argv.indexOf(name);
  if (index < 0) return fallback;
  const value = Number(argv[index + 1]);
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`${name} needs a number >= 0`);
  return value;
}

async function crashTest(argv: string[]): Promise<number> {
  const states = flag(argv, '--states', 20000);
  const seed = flag(argv, '--seed', Date.now() % 0x7fffffff);
  const scale = flag(argv, '--scale', 4);
  const corruption = flag(argv, '--corruption', 0);
  const faults = flag(argv, '--faults', 0);
  const dir = mkdtempSync(`${tmpdir()}/ringstore-crash-test-`);
  try {
    process.stderr.write(`tracing the built-in workload (scale ${scale})...\n`);
    const workload = await runBuiltinWorkload(dir, scale);
    process.stderr.write(`${workload.trace.operations.length} IOs traced; exploring ${states} crash states (seed ${seed})\n`);
    let lastPercent = -1;
    const report = await exploreCrashStates(workload.trace, workload.base, workload.operations, {
      states,
      seed,
      onProgress: (done, total) => {
        const percent = Math.floor((done / total) * 100);
        if (percent !== lastPercent && process.stderr.isTTY) process.stderr.write(`\r${'#'.repeat(percent / 4).padEnd(25, '.')} ${percent}%`);
        lastPercent = percent;
      },
    });
    if (process.stderr.isTTY) process.stderr.write('\n');
    const perMinute = report.states / (report.durationMs / 60000);
    console.log(`crash states: ${report.states} at ${report.crashPoints} crash points in ${(report.durationMs / 1000).toFixed(1)} s (${perMinute.toFixed(0)}/min)`);
    console.log(`  by strategy: ${Object.entries(report.byStrategy).map(([name, count]) => `${name} ${count}`).join(', ')}`);
    console.log(`  violations: ${report.violations.length}`);
    for (const violation of report.violations.slice(0, 10)) {
      console.log(`  - ${violation.strategy} at event ${violation.eventCount}, choice ${violation.choice}: ${violation.problem}`);
    }
    let failed = report.violations.length > 0;
    if (corruption > 0) {
      const damage = await exploreCorruption(workload.trace, workload.base, workload.operations, { trials: corruption, seed, blockSize: WORKLOAD_BLOCK_SIZE });
      console.log(
        `damaged images: ${damage.trials} (${Object.entries(damage.byDamage).map(([name, count]) => `${name} ${count}`).join(', ')}) in ${(damage.durationMs / 1000).toFixed(1)} s`,
      );
      console.log(`  refused opens ${damage.refusedOpens}, unrecognised ${damage.unrecognised}, detected reads ${damage.detectedReads}, silent losses ${damage.silentLosses} (documented limits), wrong reads ${damage.wrongReads}, other failures ${damage.failures.length}`);
      for (const failure of damage.failures.slice(0, 10)) console.log(`  - ${failure}`);
      failed ||= damage.wrongReads > 0 || damage.failures.length > 0;
    }
    if (faults > 0) {
      const faultReport = await exploreIoFaults(faults, seed);
      console.log(`IO faults: ${faultReport.runs} runs (${faultReport.injected} hit the fault), violations ${faultReport.violations.length}`);
      for (const violation of faultReport.violations.slice(0, 10)) console.log(`  - ${violation}`);
      failed ||= faultReport.violations.length > 0;
    }
    console.log(failed ? 'crash-test: FAILED' : 'crash-test: ok');
    return failed ? 1 : 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function main(argv: string[]): number | Promise<number> {
  const [command, path] = argv;
  if (command === 'crash-test') return crashTest(argv.slice(1));
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  if ((command === 'inspect' || command === 'fsck') && path !== undefined) {
    const { image, close } = openImage(path);
    try {
      const report = fsckImage(image);
      printReport(report, command === 'inspect');
      if (command === 'fsck') console.log(report.ok ? 'fsck: ok' : `fsck: ${report.errors.length} problem(s)`);
      return report.ok ? 0 : 1;
    } finally {
      close();
    }
  }
  console.error(USAGE);
  return 2;
}

void Promise.resolve()
  .then(() => main(process.argv.slice(2)))
  .then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error(error);
      process.exitCode = 2;
    },
  );
