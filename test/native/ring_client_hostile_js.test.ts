// NativeRingClient against JS that runs while the addon reads its arguments
// (found by a review). A getter that threw left its exception pending while
// the addon went on: a throw of its own on top of it aborted the process
// (a buffer list's element), or the constructor finished with the
// exception pending and the instance was freed under its threadsafe
// function (an option of the client or of the actor spec: a segfault). A
// getter that submitted on the same slot while the addon filled it tripped
// an assertion (abort). A completion view detached after construction was
// written through a stale pointer (heap corruption). Each case runs in a
// child process, so that a crash is seen as one.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

import { describeChild, PACKAGE_ENTRY_URL, runNodeModule } from './helpers.js';

const ADDON_URL = new URL('native/addon.js', PACKAGE_ENTRY_URL).href;

/** A child that makes a client over a scratch file (`fd`, in `dir`) and runs `body`; it prints what `log` collected as JSON. */
function childSource(body: string, dir: string): string {
  return `
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');
const { addon, constants: C } = await import(${JSON.stringify(ADDON_URL)});
const dir = ${JSON.stringify(dir)};
writeFileSync(dir + '/file', Buffer.alloc(4096, 1));
const fd = openSync(dir + '/file', 'r+');
const SPEC = { backend: 'threads', entries: 8, batchSize: 4, spinUs: 0, threadCount: 1, shortTransferEvery: 0 };
const view = () => new Int32Array(C.CLIENT_SLOT_COUNT * C.COMPLETION_WORDS);
const seen = [];
const log = (...items) => seen.push(items.join(' '));
const codeOf = (error) => error?.code ?? error?.message;
${body}
await new Promise((resolve) => setTimeout(resolve, 100));
gc();
await new Promise((resolve) => setTimeout(resolve, 50));
closeSync(fd);
console.log(JSON.stringify(seen));
`;
}

/**
 * A scratch directory for one child, removed by this process: a child that
 * dies (as the last test's must) cannot remove its own (found in session 42:
 * one was left in /tmp by every run of the suite).
 */
async function inScratchDirectory<T>(use: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(`${tmpdir()}/ringstore-hostile-`);
  try {
    return await use(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function run(body: string): Promise<{ seen: string[]; describe: string }> {
  const result = await inScratchDirectory((dir) => runNodeModule(childSource(body, dir), { timeoutMs: 30_000 }));
  const describe = describeChild(result);
  assert.equal(result.signal ?? null, null, `the child was killed by a signal\n${describe}`);
  assert.equal(result.exitCode, 0, describe);
  return { seen: JSON.parse(result.stdout.trim().split('\n').pop()!) as string[], describe };
}

describe('NativeRingClient: JS that runs while the addon reads its arguments', () => {
  it('a buffer list element whose getter throws: the getter\'s error, and the client goes on', async () => {
    const { seen, describe } = await run(`
const client = new addon.NativeRingClient(SPEC, (count) => log('completions', count), view(), { completionSpinUs: 0 });
const buffers = [Buffer.alloc(16)];
Object.defineProperty(buffers, 1, { get() { throw new Error('getter'); }, enumerable: true });
try { client.submitVector(0, C.OP_WRITEV, fd, 0, buffers, 0); } catch (error) { log('threw', codeOf(error)); }
client.submit(0, C.OP_READ, fd, 0, Buffer.alloc(16), 0);
await new Promise((resolve) => setTimeout(resolve, 100));
client.close();
`);
    assert.deepEqual(seen, ['threw getter', 'completions 1'], describe);
  });

  it('a buffer list element whose getter submits on the same slot: that submit goes out, the outer one is refused', async () => {
    const { seen, describe } = await run(`
const client = new addon.NativeRingClient(SPEC, (count) => log('completions', count), view(), { completionSpinUs: 0 });
const buffers = [Buffer.alloc(16)];
Object.defineProperty(buffers, 1, { get() { client.submitVector(0, C.OP_WRITEV, fd, 0, [Buffer.alloc(8)], 0); return Buffer.alloc(16); }, enumerable: true });
try { client.submitVector(0, C.OP_WRITEV, fd, 0, buffers, 0); } catch (error) { log('threw', codeOf(error)); }
await new Promise((resolve) => setTimeout(resolve, 100));
client.close();
`);
    assert.deepEqual(seen, ['threw ERR_INVALID_ARG', 'completions 1'], describe);
  });

  for (const [what, construct] of [
    ['an option of the client', `new addon.NativeRingClient(SPEC, () => {}, view(), { get completionSpinUs() { throw new Error('getter'); } })`],
    ['an option of the actor spec', `new addon.NativeRingClient({ ...SPEC, get entries() { throw new Error('getter'); } }, () => {}, view(), { completionSpinUs: 0 })`],
    ['the actor spec\'s backend', `new addon.NativeRingClient({ ...SPEC, get backend() { throw new Error('getter'); } }, () => {}, view(), { completionSpinUs: 0 })`],
  ]) {
    it(`${what} whose getter throws: the constructor throws the getter's error, and nothing is left behind to crash`, async () => {
      const { seen, describe } = await run(`
try { ${construct}; log('constructed'); } catch (error) { log('threw', codeOf(error)); }
gc();
`);
      assert.deepEqual(seen, ['threw getter'], describe);
    });
  }

  it('a completion view detached after construction: an uncaught coded error, not a write through a stale pointer', async () => {
    const result = await inScratchDirectory((dir) =>
      runNodeModule(
        childSource(
          `
const completions = view();
const client = new addon.NativeRingClient(SPEC, (count) => log('completions', count), completions, { completionSpinUs: 0 });
structuredClone(completions.buffer, { transfer: [completions.buffer] });
gc();
client.submit(0, C.OP_READ, fd, 0, Buffer.alloc(4096), 0);
`,
          dir,
        ),
        { timeoutMs: 30_000 },
      ),
    );
    const describe = describeChild(result);
    assert.equal(result.signal ?? null, null, describe);
    assert.notEqual(result.exitCode, 0, describe);
    assert.match(result.stderr, /ERR_INVALID_ARG/, describe);
    assert.match(result.stderr, /completion view was detached/, describe);
  });
});
