// Actor threads run with every signal blocked (native/blocked_signals.h):
// a signal sent to the process is handled by Node's own threads, never cuts
// an IO thread's syscall short, and the JS thread's mask is left as it was.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';

import { IoUringActor } from '../../index.js';
import { BACKENDS } from './helpers.js';

/** Signals a process is commonly sent, and their numbers on Linux (x86-64 and arm64 agree). */
const PROCESS_SIGNALS = { SIGINT: 2, SIGUSR1: 10, SIGUSR2: 12, SIGTERM: 15, SIGCHLD: 17, SIGPROF: 27 } as const;

/** Polls, THREAD_NAME_POLL_MS apart, for the actor's threads to have named themselves. */
const THREAD_NAME_TRIES_MAX = 100;
const THREAD_NAME_POLL_MS = 10;

/** The blocked-signal mask of thread `tid` of this process, from /proc; undefined if the thread has ended. */
function blockedMask(tid: string): bigint | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/self/task/${tid}/status`, 'utf8');
  } catch {
    return undefined; // an actor of an earlier test, ending meanwhile
  }
  const line = status.split('\n').find((row) => row.startsWith('SigBlk:'));
  assert.ok(line !== undefined, `thread ${tid} has a SigBlk line`);
  return BigInt(`0x${line.slice('SigBlk:'.length).trim()}`);
}

function threadsNamed(name: string): string[] {
  return readdirSync('/proc/self/task').filter((tid) => {
    try {
      return readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === name;
    } catch {
      return false; // the thread ended meanwhile
    }
  });
}

function isBlocked(mask: bigint, signal: number): boolean {
  return ((mask >> BigInt(signal - 1)) & 1n) === 1n;
}

describe('actor threads and signals', () => {
  for (const backend of BACKENDS) {
    it(`the ${backend} actor's threads block every process signal; the JS thread's mask is unchanged, and its handlers still run`, async () => {
      const mainBefore = blockedMask(String(process.pid));
      const actor = IoUringActor.start({ backend, threadCount: 2 });
      try {
        // A pool thread names itself once it runs: wait for that.
        const name = backend === 'io_uring' ? 'ringstore-uring' : 'ringstore-pool';
        const wanted = backend === 'io_uring' ? 1 : 2;
        let threads = threadsNamed(name);
        for (let tries = 0; threads.length < wanted && tries < THREAD_NAME_TRIES_MAX; tries++) {
          await new Promise((resolve) => setTimeout(resolve, THREAD_NAME_POLL_MS));
          threads = threadsNamed(name);
        }
        assert.ok(threads.length >= wanted, `found the actor's threads (${threads.length})`);
        for (const tid of threads) {
          const mask = blockedMask(tid);
          if (mask === undefined) continue;
          for (const [name, signal] of Object.entries(PROCESS_SIGNALS)) assert.ok(isBlocked(mask, signal), `thread ${tid} blocks ${name} (SigBlk ${mask.toString(16)})`);
        }
        assert.equal(blockedMask(String(process.pid)), mainBefore, "the JS thread's mask is as it was");
        const received = new Promise<void>((resolve) => process.once('SIGUSR2', () => resolve()));
        process.kill(process.pid, 'SIGUSR2');
        await received;
      } finally {
        await actor.close();
      }
    });
  }
});
