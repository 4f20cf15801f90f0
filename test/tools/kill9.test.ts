// Real process death: a child writes batches to a store on a real file and
// reports each acknowledgement; the parent kills it with SIGKILL at a random
// moment (IO in flight), reopens the store and checks it, round after round
// on the same store. (Process death, not power loss: what the kernel had
// accepted survives; the crash explorer covers power loss.)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

import { openWhenReleased } from '../engine/helpers.js';
import { killBatchEntries } from '../../tools/lab/kill_child.js';
import { fsckImage, memoryImage } from '../../tools/fsck.js';

const ROUNDS = Number(process.env.RINGSTORE_KILL_ROUNDS ?? 6);
const CHILD = new URL('../../tools/lab/kill_child.js', import.meta.url).pathname;

function runAndKill(path: string, first: number, afterMs: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, path, String(first)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let errors = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.startsWith('ready\n') && !child.killed) setTimeout(() => child.kill('SIGKILL'), afterMs).unref();
    });
    child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') {
        reject(new Error(`child exited with ${code ?? signal}: ${errors}`));
        return;
      }
      resolve(
        output
          .split('\n')
          .filter((line) => line.startsWith('ack '))
          .map((line) => Number(line.slice(4))),
      );
    });
  });
}

describe('kill -9 during writes', function () {
  this.timeout(300_000);
  let dir: string;

  before(() => {
    dir = mkdtempSync(`${tmpdir()}/ringstore-kill-`);
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it(`keeps every acknowledged batch, whole, over ${ROUNDS} kills`, async () => {
    const path = `${dir}/killed.ringstore`;
    const acknowledged: number[] = [];
    let first = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const acks = await runAndKill(path, first, 50 + ((round * 73) % 250));
      acknowledged.push(...acks);
      const store = await openWhenReleased(path, { encoding: 'string' });
      try {
        for (const batch of acknowledged) {
          for (const [key, value] of killBatchEntries(batch)) assert.equal(await store.get(key), value, `acknowledged ${key} after kill ${round}`);
        }
        // Batches in flight at the kill: all or nothing.
        for (let batch = first; batch < first + acks.length + 8; batch++) {
          const present = await Promise.all(killBatchEntries(batch).map(async ([key]) => (await store.get(key)) !== undefined));
          assert.ok(present.every(Boolean) || !present.some(Boolean), `batch ${batch} is partly there after kill ${round}`);
        }
        await store.verifyIntegrity();
      } finally {
        await store.close();
      }
      const report = fsckImage(memoryImage(readFileSync(path)));
      assert.deepEqual(report.errors, []);
      first += acks.length + 16;
    }
    assert.ok(acknowledged.length > ROUNDS, `the child acknowledged only ${acknowledged.length} batches: the test exercised nothing`);
    console.log(`      ${acknowledged.length} acknowledged batches over ${ROUNDS} kills`);
  });
});
