// Every `ringstore` command answers --help with its usage (exit 0) and
// refuses a flag it does not know (exit 2) before touching anything.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

import { runCli } from './run_cli.js';

const COMMANDS = ['inspect', 'fsck', 'format', 'dump', 'load', 'get', 'put', 'del', 'scan', 'stats', 'crash-test'];

describe('ringstore COMMAND --help and unknown flags', function () {
  this.timeout(60_000);
  let dir = '';
  before(() => {
    dir = mkdtempSync(`${tmpdir()}/ringstore-cli-flags-`);
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  for (const command of COMMANDS) {
    it(`${command} --help prints its usage and exits 0; ${command} --bogus exits 2 and creates nothing`, async () => {
      const help = await runCli([command, '--help']);
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stdout, new RegExp(`usage:\\s+ringstore ${command}`));
      const path = `${dir}/${command}-store`;
      const bogus = await runCli(command === 'crash-test' ? [command, '--bogus'] : [command, path, '--bogus']);
      assert.equal(bogus.code, 2);
      assert.match(bogus.stderr, /Unknown option '--bogus'/);
      assert.equal(bogus.stderr.includes('    at '), false, 'no stack trace');
      assert.equal(existsSync(path), false);
    });
  }

  it('inspect and fsck of a path that does not exist say so in one coded line', async () => {
    for (const command of ['inspect', 'fsck']) {
      const missing = await runCli([command, `${dir}/nothing`]);
      assert.equal(missing.code, 2);
      assert.equal(missing.stderr, `ringstore: ERR_STORE_NOT_FOUND: '${dir}/nothing' does not exist\n`);
    }
  });
});
