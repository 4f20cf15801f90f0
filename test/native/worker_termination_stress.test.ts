// A worker thread that ends with IO in flight — terminated, throwing, calling
// process.exit() or returning — neither corrupts the process nor leaves
// anything behind: its descriptors and flocks are released, and an actor it
// started is stopped.
//
// A generator: each round draws a scenario from a seed (backend io_uring or
// threads; the main thread's ring attached or the worker's own; a file,
// direct or buffered, flock'ed, and/or a BlockStore on either ring; buffers
// from allocAligned, aligned views of heap memory (allocAlignedInHeap, what
// the store reads large values into) or Buffer.alloc; a wave of 1–256 reads, writes,
// writeAndSyncs, fsyncs and trims of 4–64 KiB; one of the four exits, 0–120
// ms after the IO started) and runs it in a child process
// (fixtures/worker_stress_driver.ts), which checks after each round that the
// worker's file and store can be flock'ed again and that no descriptor into
// the test directory and no extra actor thread is left.
//
// `npm test` runs STRESS_ROUNDS_DEFAULT rounds (a few seconds): the four
// exits on both backends, and direct IO into both kinds of aligned buffer.
// Longer runs:
//
//   RINGSTORE_WORKER_STRESS_ROUNDS=400 npx mocha --no-config --timeout 0 \
//     dist/test/native/worker_termination_stress.test.js
//
// RINGSTORE_WORKER_STRESS_SEED=<n> replays a run; a failure prints its seed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

import { makeTempDir, removeTempDir } from './helpers.js';
import { EXIT_WAYS, planScenario, STRESS_BACKENDS, stressRandom, type StressRoundReport } from './fixtures/worker_stress_protocol.js';

const DRIVER_PATH = new URL('./fixtures/worker_stress_driver.js', import.meta.url).pathname;
/** Every exit way on every backend once. */
const STRESS_ROUNDS_DEFAULT = EXIT_WAYS.length * STRESS_BACKENDS.length;
/** Time one round may take (a worker starting, its IO, its exit, the checks) on a loaded machine. */
const ROUND_BUDGET_MS = 15_000;
/** Descriptors the process may gain over a run for reasons of its own (libuv's lazily opened ones). */
const FD_COUNT_SLACK = 4;

function readRounds(): number {
  const raw = process.env.RINGSTORE_WORKER_STRESS_ROUNDS;
  if (raw === undefined || raw === '') return STRESS_ROUNDS_DEFAULT;
  const rounds = Number(raw);
  assert.ok(Number.isInteger(rounds) && rounds > 0, `RINGSTORE_WORKER_STRESS_ROUNDS must be a positive integer, got '${raw}'`);
  return rounds;
}

function readSeed(): number {
  const raw = process.env.RINGSTORE_WORKER_STRESS_SEED;
  if (raw === undefined || raw === '') return 1 + Math.floor(Math.random() * 0x7fff_ffff);
  const seed = Number(raw);
  assert.ok(Number.isInteger(seed), `RINGSTORE_WORKER_STRESS_SEED must be an integer, got '${raw}'`);
  return seed;
}

interface DriverResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runDriver(seed: number, rounds: number, directory: string, timeoutMs: number): Promise<DriverResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DRIVER_PATH, String(seed), String(rounds), directory], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      resolve({ exitCode, signal, stdout, stderr });
    });
  });
}

describe('A worker thread that ends with IO in flight (stress generator)', () => {
  const rounds = readRounds();
  const seed = readSeed();

  it(`covers the four exits on both backends, and direct IO into both kinds of aligned buffer, in its first ${STRESS_ROUNDS_DEFAULT} rounds`, () => {
    const random = stressRandom(seed);
    const seen = new Set<string>();
    for (let round = 0; round < STRESS_ROUNDS_DEFAULT; round++) {
      const scenario = planScenario(random, round);
      seen.add(`${scenario.exitWay}/${scenario.backend}`);
      assert.ok(scenario.openFile || scenario.openStore !== 'none', 'every worker holds a file or a store');
      assert.ok(!scenario.direct || scenario.buffers !== 'heap', 'direct IO gets aligned buffers');
      if (scenario.direct && scenario.openFile) seen.add(`direct/${scenario.buffers}`);
    }
    assert.ok(seen.has('direct/allocAligned') && seen.has('direct/heapAligned'), 'direct IO into both kinds of aligned buffer');
    assert.equal(seen.size, EXIT_WAYS.length * STRESS_BACKENDS.length + 2);
  });

  it(`releases every descriptor, flock and actor of ${rounds} workers and never corrupts the process (seed ${seed})`, async function () {
    const timeoutMs = rounds * ROUND_BUDGET_MS;
    this.timeout(timeoutMs + 10_000);
    const directory = makeTempDir();
    try {
      const result = await runDriver(seed, rounds, directory, timeoutMs);
      const reports = result.stdout
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as StressRoundReport);
      assert.ok(
        result.exitCode === 0 && result.signal === null && reports.length === rounds,
        `seed ${seed} (replay: RINGSTORE_WORKER_STRESS_SEED=${seed} RINGSTORE_WORKER_STRESS_ROUNDS=${rounds}): ` +
          `the driver exited with code ${result.exitCode} signal ${result.signal} after ${reports.length} of ${rounds} rounds\n` +
          `--- stderr ---\n${result.stderr.slice(-6000)}`,
      );
      // The whole process's descriptors do not grow with the rounds either
      // (a leak of one a worker would; Node's own per-worker descriptors are
      // gone once each worker has exited).
      const first = reports[0].fdCount;
      const last = reports[reports.length - 1].fdCount;
      assert.ok(last <= first + FD_COUNT_SLACK, `seed ${seed}: descriptors grew from ${first} to ${last} over ${rounds} rounds`);
    } finally {
      removeTempDir(directory);
    }
  });
});
