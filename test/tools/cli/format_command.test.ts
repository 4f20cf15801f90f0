// `ringstore format PATH`: the explicit step that makes a store over what a
// file holds (open's create: true never does), and its one-line errors.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';

import { BlockStore } from '../../../engine/block_store.js';
import { pattern } from '../../native/helpers.js';
import { runCli } from './run_cli.js';

describe('ringstore format', function () {
  this.timeout(60_000);
  let dir = '';

  before(() => {
    dir = mkdtempSync(`${tmpdir()}/ringstore-cli-format-`);
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('makes an empty store over a file of foreign bytes with --force (only), which open then accepts', async () => {
    const path = `${dir}/foreign`;
    writeFileSync(path, pattern(2 << 20, 5));
    const refused = await runCli(['format', path]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /^ringstore: ERR_INVALID_ARG: .* holds 2097152 bytes: format destroys what it holds; add --force/);
    const result = await runCli(['format', path, '--force']);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.equal(statSync(path).size, 2 << 20);
    const store = await BlockStore.open(path);
    try {
      assert.equal(store.stats().keys, 0);
    } finally {
      await store.close();
    }
  });

  it('creates a missing file of --size bytes', async () => {
    const path = `${dir}/new`;
    const result = await runCli(['format', path, '--size', String(4 << 20), '--block-size', '8192']);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.equal(statSync(path).size, 4 << 20);
  });

  it('reads --size with a unit as load does, and refuses one it cannot read (64M was refused as NaN)', async () => {
    const path = `${dir}/with-unit`;
    const result = await runCli(['format', path, '--size', '6M', '--block-size', '8k']);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.equal(statSync(path).size, 6 << 20);
    const refused = await runCli(['format', `${dir}/unreadable-size`, '--size', '6 parsecs']);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /^ringstore: ERR_INVALID_ARG: --size needs a size: bytes, or with a unit \(64M, 1G\), got "6 parsecs"/);
  });

  it('says what is wrong in one line with its code, exit 2, and leaves the file as it was', async () => {
    const path = `${dir}/small`;
    const before = pattern(64 << 10, 6);
    writeFileSync(path, before);
    const result = await runCli(['format', path, '--force']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^ringstore: ERR_STORE_NO_SPACE: .* is too small for a store/);
    assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    assert.ok(readFileSync(path).equals(before));
    const bad = await runCli(['format', path, '--force', '--block-size', '1000']);
    assert.match(bad.stderr, /^ringstore: ERR_INVALID_ARG: blockSize must be a power of two/);
  });

  it('refuses a directory with ERR_STORE_PATH, with or without --force (found by a review: it asked for --force, then failed with EISDIR)', async () => {
    for (const force of [[], ['--force']]) {
      const result = await runCli(['format', dir, ...force]);
      assert.equal(result.code, 2);
      assert.match(result.stderr, /^ringstore: ERR_STORE_PATH: .* is a directory/, result.stderr);
    }
  });
});
