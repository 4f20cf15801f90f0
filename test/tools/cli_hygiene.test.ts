// The `ringstore` command line's manners, checked on every command as a user
// meets them: `--help` prints help and exits 0; an unknown flag is refused
// with exit 2 before any work starts (a `crash-test --bogus` that ran the
// default 20 000 states would take minutes); a path that holds no store, a
// directory or a foreign file is an error of one line `ringstore: CODE:
// message` (or, for inspect/fsck, a report), never a stack trace.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';

import { BlockStore } from '../../engine/block_store.js';
import { SUPERBLOCK_SLOT_COUNT } from '../../format/constants.js';
import { superblockSlotBlock } from '../../format/superblock.js';
import { addon } from '../../native/addon.js';
import { openImage } from '../../tools/cli/image_file.js';
import { fsckImage, memoryImage } from '../../tools/fsck.js';
import type { CliResult } from './cli/run_cli.js';

const CLI = new URL('../../tools/cli.js', import.meta.url).pathname;
const execFileAsync = promisify(execFile);
/**
 * Longest any of these calls may take. Each only parses its arguments or
 * fails to open a path (well under a second); a command that ignored a flag
 * and started real work is killed here and fails the test, instead of
 * running for minutes.
 */
const CALL_TIMEOUT_MS = 20_000;

/** Runs `node dist/tools/cli.js ARGS…` in `cwd`; a run killed by the timeout has code -1. */
async function runCli(args: string[], options: { cwd: string }): Promise<CliResult> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [CLI, ...args], { cwd: options.cwd, encoding: 'utf8', timeout: CALL_TIMEOUT_MS, killSignal: 'SIGKILL' });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number | string | null; stdout: string; stderr: string };
    return { code: typeof failed.code === 'number' ? failed.code : -1, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** Every command the CLI has, with the arguments it needs after PATH. */
const COMMANDS: { name: string; argsAfterPath: string[] }[] = [
  { name: 'inspect', argsAfterPath: [] },
  { name: 'fsck', argsAfterPath: [] },
  { name: 'format', argsAfterPath: [] },
  { name: 'get', argsAfterPath: ['key'] },
  { name: 'put', argsAfterPath: ['key', 'value'] },
  { name: 'del', argsAfterPath: ['key'] },
  { name: 'scan', argsAfterPath: [] },
  { name: 'stats', argsAfterPath: [] },
];

/** A line of a JavaScript stack trace ("    at main (file:///…)"). */
const STACK_LINE = /^\s+at /m;
/** The one-line error form: `ringstore: CODE: message`. */
const ERROR_LINE = /^ringstore: [A-Z][A-Z0-9_]+: \S/;

function assertNoStack(result: CliResult, what: string): void {
  assert.doesNotMatch(result.stderr, STACK_LINE, `${what}: stack trace in stderr:\n${result.stderr}`);
  assert.doesNotMatch(result.stdout, STACK_LINE, `${what}: stack trace in stdout:\n${result.stdout}`);
}

/** Exit 2 with an error whose first stderr line is `ringstore: CODE: message`. */
function assertOneLineError(result: CliResult, what: string, code?: string): void {
  assert.equal(result.code, 2, `${what}: exit ${result.code}, stderr:\n${result.stderr}`);
  const [first] = result.stderr.split('\n');
  assert.match(first, ERROR_LINE, `${what}: first stderr line is not 'ringstore: CODE: message':\n${result.stderr}`);
  if (code !== undefined) assert.ok(first.startsWith(`ringstore: ${code}: `), `${what}: expected ${code}, got: ${first}`);
  assertNoStack(result, what);
}

describe('ringstore command line hygiene', function () {
  this.timeout(120_000);
  let dir = '';
  let missing = '';

  before(() => {
    dir = mkdtempSync(`${tmpdir()}/ringstore-cli-hygiene-`);
    missing = `${dir}/no-such-store`;
    mkdirSync(`${dir}/a-directory`);
    writeFileSync(`${dir}/foreign.bin`, Buffer.alloc(64 << 10, 0x5a));
    writeFileSync(`${dir}/empty.bin`, new Uint8Array(0));
    writeFileSync(`${dir}/zeros.bin`, Buffer.alloc(1 << 20));
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('every command prints its usage for --help and exits 0', async () => {
    for (const { name } of [...COMMANDS, { name: 'crash-test' }]) {
      const result = await runCli([name, '--help'], { cwd: dir });
      assert.equal(result.code, 0, `${name} --help: exit ${result.code}, stderr:\n${result.stderr}`);
      assert.match(result.stdout, /^usage:/, `${name} --help printed no usage`);
      assert.ok(result.stdout.includes(`ringstore ${name}`), `${name} --help does not show the command's usage`);
      assertNoStack(result, `${name} --help`);
    }
  });

  it('every command refuses an unknown flag with exit 2 before doing anything', async () => {
    for (const { name, argsAfterPath } of [...COMMANDS, { name: 'crash-test', argsAfterPath: [] }]) {
      const args = name === 'crash-test' ? [name, '--bogus'] : [name, missing, ...argsAfterPath, '--bogus'];
      const result = await runCli(args, { cwd: dir });
      assertOneLineError(result, `${name} --bogus`, 'ERR_PARSE_ARGS_UNKNOWN_OPTION');
      assert.equal(result.stdout, '', `${name} --bogus wrote to stdout:\n${result.stdout}`);
    }
  });

  it('crash-test refuses a stray argument and a flag without its value, without tracing anything', async () => {
    for (const args of [['crash-test', 'extra'], ['crash-test', '--states'], ['crash-test', '--states', 'many'], ['crash-test', '--module']]) {
      const result = await runCli(args, { cwd: dir });
      assertOneLineError(result, args.join(' '));
      assert.doesNotMatch(result.stderr, /tracing/, `${args.join(' ')} started a run`);
    }
  });

  it('every command reports a missing path in one line with its code, exit 2', async () => {
    for (const { name, argsAfterPath } of COMMANDS) {
      // format makes a store at a missing path: give it one in a missing directory.
      const path = name === 'format' ? `${missing}/store` : missing;
      const result = await runCli([name, path, ...argsAfterPath], { cwd: dir });
      assertOneLineError(result, `${name} of a missing path`);
      assert.equal(result.stderr.trim().split('\n').length, 1, `${name}: more than one line:\n${result.stderr}`);
    }
    const replay = await runCli(['crash-test', '--replay', missing], { cwd: dir });
    assertOneLineError(replay, 'crash-test --replay of a missing directory', 'ERR_REPRODUCER_NOT_FOUND');
    const module = await runCli(['crash-test', '--module', `${missing}.js`], { cwd: dir });
    assertOneLineError(module, 'crash-test --module of a missing file');
  });

  it('inspect and fsck refuse a directory, and a file that holds no store as open() does (ERR_STORE_NOT_FOUND, exit 2: it said damage, exit 1), in one line', async () => {
    for (const name of ['inspect', 'fsck']) {
      assertOneLineError(await runCli([name, `${dir}/a-directory`], { cwd: dir }), `${name} of a directory`, 'ERR_STORE_PATH');
      for (const [file, holds] of [['foreign.bin', 'data'], ['empty.bin', 'nothing'], ['zeros.bin', 'zeros']]) {
        const result = await runCli([name, `${dir}/${file}`], { cwd: dir });
        assertOneLineError(result, `${name} ${file}`, 'ERR_STORE_NOT_FOUND');
        assert.match(result.stderr, new RegExp(`holds ${holds} but no ringstore`));
        assert.equal(result.stdout, '', `${name} ${file} printed a report:\n${result.stdout}`);
      }
    }
  });

  it('a command given a file that holds no store names the command that formats over it, not the API (it said BlockStore.format(); found by a review)', async () => {
    // A path holding the API's words keeps them: only the advice is the CLI's (found by a review).
    const oddDir = `${dir}/BlockStore.format() makes a store over it`;
    mkdirSync(oddDir, { recursive: true });
    writeFileSync(`${oddDir}/foreign.bin`, Buffer.alloc(64 << 10, 0x5a));
    for (const [args, path] of [
      [['stats', `${dir}/foreign.bin`], `${dir}/foreign.bin`],
      [['get', `${dir}/foreign.bin`, 'key'], `${dir}/foreign.bin`],
      [['stats', `${oddDir}/foreign.bin`], `${oddDir}/foreign.bin`],
    ] as const) {
      const result = await runCli([...args], { cwd: dir });
      assertOneLineError(result, args.join(' '), 'ERR_STORE_NOT_FOUND');
      assert.ok(result.stderr.includes(`'${path}' holds`), result.stderr);
      assert.ok(result.stderr.trimEnd().endsWith('(`ringstore format PATH --force` makes a store over it)'), result.stderr);
    }
    // A missing path and an empty file: made without --force (they said "open with create: true"; found by a review).
    writeFileSync(`${dir}/empty-for-advice`, '');
    for (const [path, advice] of [
      [`${dir}/missing-for-advice`, '(`ringstore format PATH` makes one)'],
      [`${dir}/empty-for-advice`, '(`ringstore format PATH` makes one in it)'],
    ] as const) {
      const result = await runCli(['stats', path], { cwd: dir });
      assertOneLineError(result, `stats ${path}`, 'ERR_STORE_NOT_FOUND');
      assert.ok(result.stderr.trimEnd().endsWith(advice), result.stderr);
      assert.doesNotMatch(result.stderr, /create: true/);
    }
  });

  it('inspect and fsck still call a store damage (exit 1) when every superblock copy is zeroed: its WAL is still there', async () => {
    const path = `${dir}/no-superblocks`;
    const store = await BlockStore.open(path, { create: true, blockSize: 4096, sizeBytes: 4 << 20 });
    await store.put('key', 1);
    await store.close();
    const superblock = fsckImage(memoryImage(readFileSync(path))).superblock!;
    const bytes = readFileSync(path);
    for (let slot = 0; slot < SUPERBLOCK_SLOT_COUNT; slot++) bytes.fill(0, superblockSlotBlock(slot, superblock.walStartBlock, superblock.walBlockCount) * 4096, (superblockSlotBlock(slot, superblock.walStartBlock, superblock.walBlockCount) + 1) * 4096);
    writeFileSync(path, bytes);
    await assert.rejects(BlockStore.open(path), { code: 'ERR_STORE_CORRUPT' });
    for (const name of ['inspect', 'fsck']) {
      const result = await runCli([name, path], { cwd: dir });
      assert.equal(result.code, 1, `${name}: exit ${result.code}, stderr:\n${result.stderr}`);
      assert.match(result.stdout, /^error: no valid superblock$/m);
      assertNoStack(result, name);
    }
  });

  it('inspect, fsck and dump --salvage refuse a store open for writing (ERR_STORE_LOCKED, exit 2), and hold off a writer while they read (fsck of a live store reported damage that was not there in 12 of 12 runs)', async () => {
    const path = `${dir}/live`;
    const store = await BlockStore.open(path, { create: true, encoding: 'binary', sizeBytes: 8 << 20 });
    try {
      await store.put('key', Buffer.alloc(100, 1));
      for (const args of [['inspect', path], ['fsck', path], ['dump', path, `${dir}/live.dump`, '--salvage']]) {
        const result = await runCli(args, { cwd: dir });
        assertOneLineError(result, `${args.join(' ')} of a store open for writing`, 'ERR_STORE_LOCKED');
        assert.equal(result.stdout, '', `${args.join(' ')} printed a report of a store being written:\n${result.stdout}`);
      }
    } finally {
      await store.close();
    }
    const checked = await runCli(['fsck', path], { cwd: dir });
    assert.equal(checked.code, 0, `fsck after close: exit ${checked.code}:\n${checked.stdout}${checked.stderr}`);
    assert.match(checked.stdout, /^fsck: ok$/m);
    // While a check holds the image, a writer cannot open it.
    const { close } = openImage(path);
    try {
      await assert.rejects(BlockStore.open(path, { encoding: 'binary' }), (error: Error & { code?: string }) => error.code === 'ERR_STORE_LOCKED' && /ringstore check/.test(error.message));
    } finally {
      close();
    }
    await (await BlockStore.open(path, { encoding: 'binary' })).close();
  });

  it('a check reads the store renamed over an empty file between its open and its lock, not the unlinked empty file', async () => {
    // As load --create publishes its build over an empty file it holds locked (found by a review).
    const path = `${dir}/published`;
    const build = `${dir}/published-build`;
    const store = await BlockStore.open(build, { create: true, encoding: 'binary', sizeBytes: 8 << 20 });
    await store.put('key', Buffer.alloc(100, 1));
    await store.close();
    writeFileSync(path, new Uint8Array(0));
    const holder = openSync(path, 'r');
    assert.equal(addon.lockExclusive(holder), 0);
    const originalLockShared = addon.lockShared;
    let renamed = false;
    addon.lockShared = (fd: number): number => {
      if (!renamed) {
        renamed = true;
        renameSync(build, path);
      }
      return originalLockShared(fd);
    };
    try {
      const { image, close } = openImage(path);
      try {
        assert.equal(image.sizeBytes, 8 << 20, 'the check read the empty file the path no longer names');
      } finally {
        close();
      }
    } finally {
      addon.lockShared = originalLockShared;
      closeSync(holder);
    }
  });

  it('the store commands refuse a directory and a foreign file in one line, exit 2', async () => {
    for (const { name, argsAfterPath } of COMMANDS.filter((command) => !['inspect', 'fsck', 'format'].includes(command.name))) {
      assertOneLineError(await runCli([name, `${dir}/a-directory`, ...argsAfterPath], { cwd: dir }), `${name} of a directory`, 'ERR_STORE_PATH');
      assertOneLineError(await runCli([name, `${dir}/foreign.bin`, ...argsAfterPath], { cwd: dir }), `${name} of a foreign file`, 'ERR_STORE_NOT_FOUND');
    }
  });

  it('an unknown command is refused in one line, followed by the usage, exit 2', async () => {
    const result = await runCli(['frobnicate'], { cwd: dir });
    assertOneLineError(result, 'an unknown command', 'ERR_INVALID_ARG');
    assert.match(result.stderr, /^usage:$/m);
  });

  it('a reader that closes the pipe early (scan | head -1) ends get, scan and dump in one line EPIPE, exit 2 (get and scan crashed with a stack, exit 1; found by a review)', async () => {
    const path = `${dir}/piped`;
    const store = await BlockStore.open(path, { create: true, encoding: 'binary', sizeBytes: 8 << 20 });
    for (let first = 0; first < 20_000; first += 1000) {
      await store.batch(Array.from({ length: 1000 }, (_, offset) => ({ type: 'put' as const, key: `key-${first + offset}`, value: Buffer.alloc(60, offset) })));
    }
    await store.put('large', Buffer.alloc(1 << 20, 7));
    await store.close();
    for (const args of [['scan', path], ['get', path, 'large', '--raw'], ['dump', path]]) {
      // Reads the first bytes, then closes the read end with the command still writing.
      const result = await new Promise<CliResult>((resolve, reject) => {
        const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
        let stderr = '';
        child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
        child.stdout.once('data', () => child.stdout.destroy());
        const timer = setTimeout(() => child.kill('SIGKILL'), CALL_TIMEOUT_MS);
        child.on('error', reject);
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code: code ?? -1, stdout: '', stderr });
        });
      });
      assertOneLineError(result, args.join(' '), 'EPIPE');
    }
  });

  it('bench: --help, an unknown benchmark and an unknown flag, each without running anything', async () => {
    const help = await runCli(['bench', '--help'], { cwd: dir });
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /ringstore bench store\|io/);
    assertOneLineError(await runCli(['bench', 'nope'], { cwd: dir }), 'bench nope', 'ERR_INVALID_ARG');
    for (const which of ['store', 'io']) {
      const storeHelp = await runCli(['bench', which, '--help'], { cwd: dir });
      assert.equal(storeHelp.code, 0, storeHelp.stderr);
      assert.match(storeHelp.stdout, /usage: npm run bench/);
      assertOneLineError(await runCli(['bench', which, '--bogus'], { cwd: dir }), `bench ${which} --bogus`);
    }
  });
});
