// Shared helpers for the IO-layer tests: temporary directories, data
// patterns, error assertions and child processes. Not a test file itself
// (mocha runs only *.test.js).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';

import type { RingBackend } from '../../index.js';

/** Both backends: every behaviour of the IO layer must hold on each. */
export const BACKENDS: readonly RingBackend[] = ['io_uring', 'threads'];

/** The built package as a child process imports it (dist/index.js). */
export const PACKAGE_ENTRY_URL: string = new URL('../../index.js', import.meta.url).href;

/** Time a child process gets before it is killed and reported as hung. */
export const CHILD_TIMEOUT_MS = 10_000;

/** A fresh directory under os.tmpdir() (ext4 here, so direct IO works). */
export function makeTempDir(): string {
  return mkdtempSync(`${tmpdir()}/ringstore-test-`);
}

export function removeTempDir(dir: string | undefined): void {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * Runs `run` with a tmpfs of `sizeBytes` of its own mounted at `dir` (root
 * only: a file system no other test writes to, whose free space is this
 * test's alone), then unmounts it. A failure of `run` is what is thrown:
 * the unmount after it, which a file still open there makes fail, is done
 * lazily and not reported over it (it hid the test's own message and left
 * the mount behind; found by a review). After a run that passed, a failed
 * unmount fails the test (still lazily unmounted).
 */
export async function withOwnTmpfs<T>(dir: string, sizeBytes: number, run: () => Promise<T>): Promise<T> {
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', dir]);
  let result: T;
  try {
    result = await run();
  } catch (error) {
    unmountLazily(dir);
    throw error;
  }
  try {
    execFileSync('umount', [dir], { stdio: 'pipe' });
  } catch (error) {
    unmountLazily(dir);
    throw new Error(`the tmpfs at ${dir} could not be unmounted after the test (something holds a file there): ${String((error as { stderr?: unknown }).stderr ?? error).trim()}`);
  }
  return result;
}

function unmountLazily(dir: string): void {
  try {
    execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
  } catch {
    // Not mounted any more, or not ours to unmount: the caller's error says more.
  }
}

/**
 * Fills `bytes` with a pseudo-random pattern determined by `seed` (xorshift32),
 * so a misplaced, torn or stale block cannot pass a comparison.
 */
export function fillPattern(bytes: Uint8Array, seed: number): Uint8Array {
  let x = (Math.imul(seed + 1, 2654435761) >>> 0) || 1;
  for (let i = 0; i < bytes.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

/** A new Buffer of `sizeBytes` holding the pattern of `seed`. */
export function pattern(sizeBytes: number, seed: number): Buffer {
  const buffer = Buffer.alloc(sizeBytes);
  fillPattern(buffer, seed);
  return buffer;
}

/** The bytes of any view, for comparison with assert.deepEqual or Buffer#equals. */
export function bytesOf(view: ArrayBufferView): Buffer {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

export function assertAllZero(view: ArrayBufferView, what: string): void {
  const bytes = bytesOf(view);
  const index = bytes.findIndex((byte) => byte !== 0);
  assert.equal(index, -1, `${what}: byte ${index} is ${bytes[index]}, expected all zeros`);
}

type ErrorClass<E extends Error = Error> = abstract new (...args: never[]) => E;

/** Asserts that `error` is a `type` with `code` and a message that says something. */
export function assertError<E extends Error>(
  error: unknown,
  type: ErrorClass<E>,
  code: string,
): asserts error is E & { code: string } {
  assert.ok(error instanceof type, `expected a ${type.name} with code ${code}, got ${describeValue(error)}`);
  assert.equal((error as { code?: unknown }).code, code, `wrong code on ${describeValue(error)}`);
  assert.ok(error.message.length > 10, `the message of ${code} should explain it, got '${error.message}'`);
}

/**
 * Calls `start`, which must return a promise (never throw synchronously), and
 * asserts that the promise rejects with a `type` carrying `code`.
 */
export async function rejectsWith<E extends Error>(
  start: () => Promise<unknown>,
  type: ErrorClass<E>,
  code: string,
): Promise<E & { code: string }> {
  let promise: Promise<unknown> | undefined;
  try {
    promise = start();
  } catch (error) {
    assert.fail(`expected a rejected promise, but the call threw synchronously: ${describeValue(error)}`);
  }
  let outcome: unknown;
  try {
    outcome = await promise;
  } catch (error) {
    assertError(error, type, code);
    return error;
  }
  return assert.fail(`expected a rejection with ${code}, but it resolved with ${String(outcome)}`);
}

/** Asserts that `run` throws a `type` carrying `code`. */
export function throwsWith<E extends Error>(run: () => unknown, type: ErrorClass<E>, code: string): E & { code: string } {
  let outcome: unknown;
  try {
    outcome = run();
  } catch (error) {
    assertError(error, type, code);
    return error;
  }
  return assert.fail(`expected a throw with ${code}, but it returned ${String(outcome)}`);
}

function describeValue(value: unknown): string {
  if (value instanceof Error) {
    const coded = value as Error & { code?: unknown };
    return `${value.constructor.name}(code=${String(coded.code)}): ${value.message}`;
  }
  return `${typeof value} ${String(value)}`;
}

export interface ChildResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the child was killed for running past its time limit. */
  timedOut: boolean;
}

/**
 * Runs `source` as an ES module in a new node process and collects its
 * outcome. The child is killed after `timeoutMs`. The source is written to a
 * file (child.mjs in a fresh directory) rather than passed with -e, so that
 * worker threads it starts do not inherit --input-type. The child keeps its
 * working files in that directory (CHILD_DIR_SOURCE gives its path), which
 * the parent removes afterwards even if the child crashed or was killed.
 */
export async function runNodeModule(
  source: string,
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<ChildResult> {
  const dir = makeTempDir();
  try {
    const scriptPath = `${dir}/child.mjs`;
    writeFileSync(scriptPath, source);
    return await runNodeScript(scriptPath, options.env ?? process.env, options.timeoutMs ?? CHILD_TIMEOUT_MS);
  } finally {
    removeTempDir(dir);
  }
}

function runNodeScript(scriptPath: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [scriptPath], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('exit', (exitCode, signal) => {
      clearTimeout(timer);
      // 'exit' can precede the end of the pipes; wait for them to drain.
      let open = 2;
      const done = (): void => {
        if (--open === 0) resolve({ exitCode, signal, stdout, stderr, timedOut });
      };
      if (child.stdout.readableEnded) done();
      else child.stdout.once('end', done);
      if (child.stderr.readableEnded) done();
      else child.stderr.once('end', done);
    });
  });
}

/** An expression, for a child's source, of the directory the child may use. */
export const CHILD_DIR_SOURCE = "(await import('node:url')).fileURLToPath(new URL('.', import.meta.url))";

/** A one-line account of a child's outcome for assertion messages. */
export function describeChild(result: ChildResult): string {
  const how = result.timedOut
    ? 'was killed after its time limit'
    : `exited with code ${result.exitCode} signal ${result.signal}`;
  return `child ${how}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`;
}

/**
 * Skips the current test (or, from a hook, the tests it guards) and prints
 * why, since mocha's own report shows only that they were skipped.
 */
export function skipBecause(context: Mocha.Context, reason: string): never {
  process.stdout.write(`      (skipped: ${reason})\n`);
  return context.skip();
}
