#!/usr/bin/env node
// The `ringstore` command line.
//
//   ringstore inspect PATH   superblocks, geometry, checkpoint, WAL, key count
//   ringstore fsck PATH      independent check (format/ only); exit 1 on damage
//   ringstore format PATH    make a new, empty store, destroying what PATH holds
//   ringstore get|put|del|scan|stats PATH …   a store's contents (cli/store_commands.ts)
//   ringstore dump|load      a store's entries as a dump stream and back (cli/dump_command.ts)
//   ringstore crash-test     the durability lab (crash_test_command.ts)
//   ringstore help
//
// inspect, fsck and dump --salvage read the store image with plain positional reads
// (node:fs, cli/image_file.ts), never through the engine, so they work on a store the
// engine refuses to open.
import { parseArgs } from 'node:util';

import { BlockStore } from '../engine/block_store.js';
import { STORE_ADVICE, StoreError } from '../engine/store_error.js';

import { BENCH_USAGE, benchCommand } from './cli/bench_command.js';
import { DUMP_COMMANDS_USAGE, dumpCommand, loadCommand } from './cli/dump_command.js';
import { describeUnreadable, openImage } from './cli/image_file.js';
import { startProgress, type Progress } from './cli/progress.js';
import { isStoreCommand, STORE_COMMANDS_USAGE, storeCommand } from './cli/store_commands.js';
import { CRASH_TEST_USAGE, crashTestCommand } from './crash_test_command.js';
import { fsckImage, type FsckReport } from './fsck.js';
import { statStorePath, usageCode } from './cli/command_line.js';
import { guardStdout, stdoutFailure } from './cli/stdout_pipe.js';
import { sizeFlag } from './size_argument.js';

const USAGE = `usage:
  ringstore inspect PATH   print the store's superblock, geometry, checkpoint and WAL state
  ringstore fsck PATH      check a store independently of the engine (exit 1 if damaged)
  ringstore format PATH [--size SIZE] [--block-size SIZE] [--wal-size SIZE] [--force]
                           make a new, empty store at PATH (a file or block device);
                           --force to destroy what PATH holds (a device, a non-empty
                           file); open's create: true never does
${STORE_COMMANDS_USAGE}
${DUMP_COMMANDS_USAGE}
${CRASH_TEST_USAGE}
${BENCH_USAGE}
  ringstore help`;

function printReport(report: FsckReport, verbose: boolean): void {
  const superblock = report.superblock;
  if (superblock !== undefined && verbose) {
    const mib = (blocks: number): string => ((blocks * superblock.blockSize) / 2 ** 20).toFixed(1);
    console.log(`format version ${superblock.formatVersion}, block size ${superblock.blockSize} B, store tag 0x${superblock.storeTag.toString(16)}`);
    console.log(`blocks: ${superblock.blockCount} (${mib(superblock.blockCount)} MiB); WAL blocks ${superblock.walStartBlock}..${superblock.walStartBlock + superblock.walBlockCount - 1} (${mib(superblock.walBlockCount)} MiB); data from block ${superblock.dataStartBlock}`);
    console.log(`superblock generation ${superblock.generation}`);
    console.log(
      superblock.checkpointSeq === 0
        ? 'checkpoint: none yet'
        : `checkpoint: through commit ${superblock.checkpointSeq}; tree of ${superblock.keyCount} keys, ${report.pages} pages${superblock.treeRoot === undefined ? '' : `, root at block ${superblock.treeRoot.block} (level ${superblock.treeRoot.level})`}; free set in ${superblock.freeSetBlockCount} blocks (${superblock.freeSetExtents.map((e) => `${e.startBlock}+${e.blockCount}`).join(', ')})`,
    );
    console.log(`WAL: replay from WAL block ${superblock.walReplayBlock}, ${report.walCommits} commits after the checkpoint${report.tornTail === undefined ? '' : `; ends at a torn commit: ${report.tornTail}`}`);
  }
  // A check stopped by damage counted only what it read before it: no count passes for the store's.
  if (report.complete) console.log(`keys: ${report.keys} (${report.extentValues} in data extents, ${report.referencedBlocks} blocks referenced)`);
  else console.log('keys: not counted: the check stopped at the first error below (ringstore dump --salvage copies out every entry that still verifies)');
  for (const warning of report.warnings) console.log(`warning: ${warning}`);
  for (const error of report.errors) console.log(`error: ${error}`);
}

function main(argv: string[]): number | Promise<number> {
  const [command] = argv;
  if (command === 'crash-test') return crashTestCommand(argv.slice(1));
  if (command === 'bench') return benchCommand(argv.slice(1));
  if (command === 'format') return formatCommand(argv.slice(1));
  if (command === 'dump') return dumpCommand(argv.slice(1));
  if (command === 'load') return loadCommand(argv.slice(1));
  if (command !== undefined && isStoreCommand(command)) return storeCommand(command, argv.slice(1));
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === 'inspect' || command === 'fsck') return checkCommand(command, argv.slice(1));
  console.error(`ringstore: ERR_INVALID_ARG: unknown command '${command}'`);
  console.error(USAGE);
  return 2;
}

/** `ringstore inspect PATH` and `ringstore fsck PATH`: the image read through format/ only (fsck.ts). */
function checkCommand(command: 'inspect' | 'fsck', args: string[]): number {
  const usage = `ringstore ${command} PATH`;
  let parsed;
  try {
    parsed = parseArgs({ args, options: { help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (error) {
    console.error(`ringstore: ${usageCode(error)}: ${(error as Error).message}\nusage: ${usage}`);
    return 2;
  }
  if (parsed.values.help === true) {
    console.log(`usage: ${usage}`);
    return 0;
  }
  if (parsed.positionals.length !== 1) {
    console.error(`usage: ${usage}`);
    return 2;
  }
  // A path that cannot name a file (a symlink loop, ENOTDIR) is ERR_STORE_PATH, as for dump and stats (it printed a raw ELOOP; found by a review).
  if (statStorePath(parsed.positionals[0], command) === undefined) {
    throw Object.assign(new Error(`'${parsed.positionals[0]}' does not exist`), { code: 'ERR_STORE_NOT_FOUND' });
  }
  const { image, unreadable, close } = openImage(parsed.positionals[0]);
  const bars: Partial<Record<'tree' | 'values', Progress>> = {};
  try {
    const report = fsckImage(image, (phase, done, total) => {
      if (phase === 'values') bars.tree?.stop();
      (bars[phase] ??= startProgress(phase === 'tree' ? `${command}: keys` : `${command}: values`, total, 'count')).update(done);
    });
    bars.tree?.stop();
    bars.values?.stop();
    // Sectors the device could not read are damage, whatever the checks made of their zeros.
    if (unreadable.length > 0) {
      report.errors.push(...describeUnreadable(unreadable));
      report.ok = false;
    }
    // A file that holds no store is no damaged store: refused as open() refuses it (exit 2), not "damage" (exit 1).
    // No advice to salvage it: with no superblock and no WAL, salvage finds nothing either (it says the same).
    if (report.noStore !== undefined && unreadable.length === 0) {
      throw Object.assign(new Error(`'${parsed.positionals[0]}' holds ${report.noStore} but no ringstore: no superblock copy and no WAL block carries ringstore's magic`), {
        code: 'ERR_STORE_NOT_FOUND',
      });
    }
    printReport(report, command === 'inspect');
    if (command === 'fsck') console.log(report.ok ? 'fsck: ok' : `fsck: ${report.errors.length} problem(s)${report.complete ? '' : ', and the check stopped at the first: there may be more'}`);
    return report.ok ? 0 : 1;
  } finally {
    bars.tree?.stop();
    bars.values?.stop();
    close();
  }
}

async function formatCommand(args: string[]): Promise<number> {
  const usage = 'ringstore format PATH [--size SIZE] [--block-size SIZE] [--wal-size SIZE] [--force]';
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { size: { type: 'string' }, 'block-size': { type: 'string' }, 'wal-size': { type: 'string' }, force: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    console.error(`ringstore: ${usageCode(error)}: ${(error as Error).message}\nusage: ${usage}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    console.log(`usage: ${usage}`);
    return 0;
  }
  if (positionals.length !== 1) {
    console.error(`usage: ${usage}`);
    return 2;
  }
  const target = statStorePath(positionals[0], 'format');
  if (target !== undefined && !target.isFile() && !target.isBlockDevice()) {
    // No store can be made there, --force or not (ERR_STORE_PATH, as open() says).
    throw new StoreError('ERR_STORE_PATH', `'${positionals[0]}' is ${target.isDirectory() ? 'a directory' : 'not a regular file or a block device'}: a store is made in a file or on a block device`);
  }
  if (target !== undefined && (target.isBlockDevice() || target.size > 0) && values.force !== true) {
    const what = target.isBlockDevice() ? 'is a block device' : `holds ${target.size} bytes`;
    throw Object.assign(new RangeError(`'${positionals[0]}' ${what}: format destroys what it holds; add --force to do so`), { code: 'ERR_INVALID_ARG' });
  }
  await BlockStore.format(positionals[0], { sizeBytes: sizeFlag(values.size, '--size'), blockSize: sizeFlag(values['block-size'], '--block-size'), walSizeBytes: sizeFlag(values['wal-size'], '--wal-size') });
  console.log(`formatted ${positionals[0]}`);
  return 0;
}

/**
 * The engine's advice that names its API, at the end of a message, and what
 * the command line's user has for it. Only that end is replaced: a path or
 * key in the message may hold the same words (found by a review).
 */
const API_ADVICE_IN_CLI_WORDS: ReadonlyArray<readonly [string, string]> = [
  [`(${STORE_ADVICE.formatOverIt})`, '(`ringstore format PATH --force` makes a store over it)'],
  [`(${STORE_ADVICE.formatOverAnything})`, '(`ringstore format PATH --force` makes a store over it)'],
  [`(${STORE_ADVICE.createOne})`, '(`ringstore format PATH` makes one)'],
  [`(${STORE_ADVICE.createStore})`, '(`ringstore format PATH` makes one)'],
  [`(${STORE_ADVICE.createStoreInIt})`, '(`ringstore format PATH` makes one in it)'],
];

/** An operating or argument error as one line; anything else is a bug, with its stack. */
function reportError(error: unknown): void {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && error instanceof Error) {
    // Node's fs errors already start with their code ("ENOENT: no such file…"): not twice.
    let message = error.message.startsWith(`${code}: `) ? error.message.slice(code.length + 2) : error.message;
    for (const [api, command] of API_ADVICE_IN_CLI_WORDS) if (message.endsWith(api)) message = message.slice(0, -api.length) + command;
    console.error(`ringstore: ${code}: ${message}`);
  } else {
    console.error(error);
  }
}

guardStdout();
void Promise.resolve()
  .then(() => main(process.argv.slice(2)))
  .then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      // A write to a closed stdout fails the command with the pipe's error (stdout_pipe.ts).
      reportError(error);
      process.exitCode = 2;
    },
  );
// Output of console.log lost to a reader that went away: the command did not
// do what was asked of it, whatever it returned.
process.once('beforeExit', () => {
  const failure = stdoutFailure();
  if (failure !== undefined && process.exitCode !== 2) {
    reportError(failure);
    process.exitCode = 2;
  }
});
