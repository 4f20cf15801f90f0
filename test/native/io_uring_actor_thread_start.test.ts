// A ring whose IO thread cannot be created (RLIMIT_NPROC, a cgroup's
// pids.max, no address space for the thread's stack) fails with a coded
// error: std::thread reports pthread_create's error by throwing, and an
// uncaught C++ exception would abort the whole process.
//
// The child lowers its own address-space limit (RLIMIT_AS, through the
// prlimit tool: Node has no setrlimit) to a few MiB above what it maps,
// less than a thread's default 8 MiB stack, starts a ring, then lifts the
// limit and starts one again. Root may exceed RLIMIT_NPROC, not RLIMIT_AS.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

import { describeChild, PACKAGE_ENTRY_URL, runNodeModule } from './helpers.js';

/** Room left above the child's mapped size: its small allocations fit, a thread's stack (8 MiB by default) does not. */
const ADDRESS_SPACE_SLACK_BYTES = 4 * 1024 * 1024;
/** With this room one pool thread's stack fits and the second does not: the start fails with a thread already running. */
const ONE_STACK_SLACK_BYTES = 12 * 1024 * 1024;

function childSource(backend: string, threadCount: number, slackBytes: number): string {
  return `
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
const { IoUringActor } = await import(${JSON.stringify(PACKAGE_ENTRY_URL)});
const mappedBytes = () => Number(/VmSize:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
const limitAddressSpace = (soft) => execFileSync('prlimit', ['--pid', String(process.pid), '--as=' + soft + ':unlimited']);
const options = { backend: ${JSON.stringify(backend)}, threadCount: ${threadCount} };
limitAddressSpace(mappedBytes() + ${slackBytes});
let failure;
try {
  const ring = IoUringActor.start(options);
  await ring.close();
} catch (error) {
  failure = { name: error.name, code: error.code, errno: error.errno, syscall: error.syscall, message: error.message };
}
limitAddressSpace('unlimited');
const ring = IoUringActor.start(options);
await ring.close();
console.log(JSON.stringify({ failure }));
`;
}

const havePrlimit = spawnSync('prlimit', ['--version']).status === 0;

describe('IoUringActor.start: no thread for the actor', () => {
  const cases = [
    { backend: 'io_uring', threadCount: 1, slackBytes: ADDRESS_SPACE_SLACK_BYTES, what: 'its one thread' },
    { backend: 'threads', threadCount: 1, slackBytes: ADDRESS_SPACE_SLACK_BYTES, what: 'its first thread' },
    { backend: 'threads', threadCount: 4, slackBytes: ONE_STACK_SLACK_BYTES, what: 'its second thread, the first one running' },
  ];
  for (const { backend, threadCount, slackBytes, what } of cases) {
    it(`the ${backend} backend without ${what}: an EAGAIN error from pthread_create, not an abort; the next start works`, async function () {
      if (!havePrlimit) this.skip(); // util-linux's prlimit: in every Debian, missing from some minimal images
      const result = await runNodeModule(childSource(backend, threadCount, slackBytes), { timeoutMs: 30_000 });
      assert.equal(result.exitCode, 0, describeChild(result));
      const { failure } = JSON.parse(result.stdout.trim().split('\n').pop()!) as {
        failure?: { name: string; code: string; errno: number; syscall: string; message: string };
      };
      assert.ok(failure !== undefined, `the start under the limit failed\n${describeChild(result)}`);
      assert.equal(failure.name, 'RingSystemError', describeChild(result));
      assert.equal(failure.code, 'EAGAIN', describeChild(result));
      assert.equal(failure.errno, -11, describeChild(result));
      assert.equal(failure.syscall, 'pthread_create', describeChild(result));
    });
  }
});
