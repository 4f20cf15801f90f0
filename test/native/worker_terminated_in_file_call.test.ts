// A worker thread terminated while its JS calls the addon's promise-returning
// file operations (RingFile.stat(), IoUringActor.open(), RingFile.close())
// must not take the process down. While a worker is being terminated,
// napi_create_promise fails; node-addon-api, built without C++ exceptions,
// left the promise handle uninitialized, and the addon returned that garbage
// to V8: SIGSEGV, usually at the first termination (found by a review).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

import { makeTempDir, PACKAGE_ENTRY_URL, removeTempDir } from './helpers.js';

/**
 * The calls the workers make, one kind a worker, in turn. 'attach': a
 * client of the worker's ring made and closed; napi_wrap failed in a
 * worker being terminated, and the client's constructor then made
 * node-addon-api abort the process (FATAL ERROR: Error::New
 * napi_get_last_error_info; found by a review).
 */
const CALLS = ['stat', 'open and close', 'attach'] as const;
/**
 * Workers terminated (~0.17 s each). Against the addon before the fix, a
 * run of them crashed (SIGSEGV) in 9 of 10 runs here and 3 of 5 in a second
 * reader's, most within 1 s; before the attach fix, 16 of them aborted in 2
 * of 6 runs (the window is narrower: the termination must come between the
 * JS call and napi_wrap).
 */
const TERMINATIONS = 48;

describe('A worker terminated inside a call of the addon (file operations, a client attached)', function () {
  this.timeout(120_000);
  let dir: string | undefined;

  before(() => {
    dir = makeTempDir();
  });

  after(() => {
    removeTempDir(dir);
  });

  it(`${TERMINATIONS} workers terminated while calling ${CALLS.join(', ')} in a loop leave the process running`, () => {
    const path = `${dir}/terminated.bin`;
    // A worker makes its kind of call forever; the parent terminates it
    // 0–3 ms after it started calling.
    // (An ES module, as the child's --input-type makes eval'd workers.)
    const worker = `
      import { parentPort, workerData as call } from 'node:worker_threads';
      const { IoUringActor } = await import(${JSON.stringify(PACKAGE_ENTRY_URL)});
      const ring = IoUringActor.start({ spinUs: 0 });
      const file = await ring.open(${JSON.stringify(path)});
      parentPort.postMessage('calling');
      // Calls made without waiting for them, so that the worker's JS is
      // almost always inside one when the termination comes.
      for (;;) {
        for (let i = 0; i < 512; i++) {
          if (call === 'stat') file.stat().catch(() => undefined);
          else if (call === 'attach') IoUringActor.attach(ring.id, { completionSpinUs: 0 }).close().catch(() => undefined);
          else ring.open(${JSON.stringify(path)}).then((opened) => opened.close()).catch(() => undefined);
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    `;
    const script = `
      import { Worker } from 'node:worker_threads';
      import { writeFileSync } from 'node:fs';
      writeFileSync(${JSON.stringify(path)}, Buffer.alloc(4096));
      const calls = ${JSON.stringify(CALLS)};
      for (let round = 0; round < ${TERMINATIONS}; round++) {
        const worker = new Worker(${JSON.stringify(worker)}, { eval: true, workerData: calls[round % calls.length] });
        await new Promise((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 3));
        await worker.terminate();
      }
      console.log('survived');
    `;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 100_000 });
    assert.equal(child.signal, null, `the process died of ${child.signal}:\n${child.stderr}`);
    assert.equal(child.status, 0, `exit ${child.status}:\n${child.stderr}`);
    assert.equal(child.stdout.trim(), 'survived');
  });
});
