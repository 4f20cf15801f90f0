// A throw from onCompletions (IoUringActor throws only on a bug: a
// completion for a slot it has no command in) must not vanish. Node 20
// drops an exception left pending by an addon's call into JS with only a
// deprecation warning (DEP0168); the client reports it as uncaught instead,
// on both delivery paths: the threadsafe function, and the completion spin.
import assert from 'node:assert/strict';

import { constants } from '../../native/addon.js';
import { describeChild, PACKAGE_ENTRY_URL, runNodeModule } from './helpers.js';

const ADDON_URL = new URL('native/addon.js', PACKAGE_ENTRY_URL).href;

/** A child whose onCompletions throws on every delivery; it prints what reached process 'uncaughtException'. */
function childSource(completionSpinUs: number): string {
  return `
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
const { addon, constants } = await import(${JSON.stringify(ADDON_URL)});
const dir = mkdtempSync(tmpdir() + '/ringstore-throw-');
const path = dir + '/file';
writeFileSync(path, Buffer.alloc(4096, 1));
const fd = openSync(path, 'r');
const view = new Int32Array(constants.CLIENT_SLOT_COUNT * constants.COMPLETION_WORDS);
const uncaught = [];
process.on('uncaughtException', (error) => uncaught.push(error.message));
let deliveries = 0;
let finish;
const finished = new Promise((resolve) => (finish = resolve));
const targets = [Buffer.alloc(512), Buffer.alloc(512)];
const client = new addon.NativeRingClient({ backend: 'io_uring', entries: 8, batchSize: 4, spinUs: 0, threadCount: 1, shortTransferEvery: 0 }, () => {
  deliveries++;
  // The second read goes out from the first delivery: with a spin, the JS
  // thread is polling for it when it completes (the spin's path), the first
  // came through the threadsafe function.
  if (deliveries === 1) client.submit(1, constants.OP_READ, fd, 512, targets[1], 0);
  else setImmediate(finish);
  throw new Error('thrown by onCompletions ' + deliveries);
}, view, { completionSpinUs: ${completionSpinUs}, completionSpinAdaptive: 0 });
client.submit(0, constants.OP_READ, fd, 0, targets[0], 0);
await finished;
client.close();
closeSync(fd);
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ deliveries, uncaught }));
`;
}

describe('NativeRingClient: a throw from onCompletions', () => {
  // 0: both deliveries through the threadsafe function; SPIN_US_MAX: the
  // second, most likely, through the completion spin (it completes within
  // the window; a host too loaded for that delivers it the other way, and
  // the test then proves less, not something false).
  for (const completionSpinUs of [0, constants.SPIN_US_MAX]) {
    it(`is reported as uncaught, not dropped (completionSpinUs ${completionSpinUs})`, async () => {
      const result = await runNodeModule(childSource(completionSpinUs), { timeoutMs: 30_000 });
      assert.equal(result.exitCode, 0, describeChild(result));
      const { deliveries, uncaught } = JSON.parse(result.stdout.trim().split('\n').pop()!) as { deliveries: number; uncaught: string[] };
      assert.equal(deliveries, 2, describeChild(result));
      assert.deepEqual(uncaught, ['thrown by onCompletions 1', 'thrown by onCompletions 2'], describeChild(result));
      assert.doesNotMatch(result.stderr, /DEP0168/, describeChild(result));
    });
  }
});
