// The scale section's memory limit (tools/bench/memory_cgroup.ts): sizes,
// where this process's memory cgroup is, and a child run inside a cgroup of
// its own (where the host lets the test make one: root and a writable
// memory hierarchy; skipped with the reason otherwise).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { createMemoryCgroup, MEMORY_MAX_BYTES_MIN, memoryHierarchyOf, parseMemorySize, type MemoryCgroup } from '../../tools/bench/memory_cgroup.js';

describe('bench memory cgroups', () => {
  describe('parseMemorySize()', () => {
    it('reads bytes, and k, m, g with or without iB, in either case', () => {
      assert.equal(parseMemorySize('1g'), 2 ** 30);
      assert.equal(parseMemorySize('1GiB'), 2 ** 30);
      assert.equal(parseMemorySize('512m'), 512 * 2 ** 20);
      assert.equal(parseMemorySize('768M'), 768 * 2 ** 20);
      assert.equal(parseMemorySize(' 65536k '), 64 * 2 ** 20);
      assert.equal(parseMemorySize('1073741824'), 2 ** 30);
    });

    it('refuses malformed sizes and sizes below the minimum', () => {
      for (const text of ['', 'g', '1.5g', '-1g', '1t', '1 g', '63m', `${MEMORY_MAX_BYTES_MIN - 1}`, '99999999999999999999g']) {
        assert.throws(() => parseMemorySize(text), RangeError, text);
      }
    });
  });

  describe('memoryHierarchyOf()', () => {
    it("takes cgroup v1's memory line where there is one, even beside v2's", () => {
      const text = '9:name=systemd:/\n4:memory:/process_api/abc\n0::/\n';
      assert.deepEqual(memoryHierarchyOf(text, '/sys/fs/cgroup', true), { version: 1, directory: '/sys/fs/cgroup/memory/process_api/abc' });
      assert.deepEqual(memoryHierarchyOf('5:cpu,memory:/x\n', '/r', false), { version: 1, directory: '/r/memory/x' });
    });

    it("takes v2's unified line where v2 is mounted and no v1 hierarchy has memory", () => {
      const text = '0::/user.slice/session-1.scope\n';
      assert.deepEqual(memoryHierarchyOf(text, '/sys/fs/cgroup', true), { version: 2, directory: '/sys/fs/cgroup/user.slice/session-1.scope' });
      assert.equal(memoryHierarchyOf(text, '/sys/fs/cgroup', false), undefined);
      assert.equal(memoryHierarchyOf('3:cpuset:/\n', '/sys/fs/cgroup', true), undefined);
    });
  });

  describe('createMemoryCgroup()', () => {
    it('runs a wrapped command inside a cgroup of its own with the limit, and removes the cgroup after', async function () {
      let cgroup: MemoryCgroup;
      try {
        cgroup = createMemoryCgroup(`ringstore-test-${process.pid}`, 256 * 2 ** 20);
      } catch (error) {
        this.skip();
        throw error;
      }
      try {
        const limitFile = ['memory.limit_in_bytes', 'memory.max'].map((name) => join(cgroup.directory, name)).find(existsSync)!;
        assert.equal(Number(readFileSync(limitFile, 'utf8').trim()), 256 * 2 ** 20);
        const { command, args } = cgroup.wrap('/bin/cat', ['/proc/self/cgroup']);
        const result = spawnSync(command, args, { encoding: 'utf8' });
        assert.equal(result.status, 0, result.stderr);
        const name = `/ringstore-test-${process.pid}`;
        assert.ok(result.stdout.split('\n').some((line) => line.endsWith(name)), `the command ran in ${name}: ${result.stdout}`);
      } finally {
        await cgroup.remove();
      }
      assert.ok(!existsSync(cgroup.directory), 'the cgroup is gone');
    });

    it('refuses a limit below the minimum and a name that is not one path segment, before touching cgroups', () => {
      assert.throws(() => createMemoryCgroup('ok', MEMORY_MAX_BYTES_MIN - 1), RangeError);
      assert.throws(() => createMemoryCgroup('../escape', 2 ** 30), RangeError);
      assert.throws(() => createMemoryCgroup('', 2 ** 30), RangeError);
    });
  });
});
