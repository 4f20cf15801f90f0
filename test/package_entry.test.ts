// The package's entry points as users reach them by name: `import` and
// `require` of 'ringstore' give the same single copy (no dual-package
// hazard: require(esm), Node >= 20.19), and the crash lab is its own entry
// point, 'ringstore/lab', which the root does not load.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const PACKAGE_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

/** Runs `source` in a child whose module is inside the package, so 'ringstore' resolves to it by self-reference. */
async function evaluate(source: string, inputType: 'commonjs' | 'module'): Promise<string> {
  const { stdout } = await run(process.execPath, [`--input-type=${inputType}`, '-e', source], { cwd: PACKAGE_ROOT });
  return stdout.trim();
}

describe('package entry points (ringstore, ringstore/lab, ringstore/level)', function () {
  this.timeout(30_000);

  it("require('ringstore') and import('ringstore') give the same classes", async () => {
    const out = await evaluate(
      `const cjs = require('ringstore');
       const level = require('ringstore/level');
       import('ringstore').then((esm) => console.log(typeof cjs.BlockStore, cjs.BlockStore === esm.BlockStore, cjs.IoUringActor === esm.IoUringActor, typeof level.RingLevel));`,
      'commonjs',
    );
    assert.equal(out, 'function true true function');
  });

  it("keeps the crash lab out of the root: 'ringstore/lab' has it, for import and require", async () => {
    const out = await evaluate(
      `const root = await import('ringstore');
       const lab = await import('ringstore/lab');
       const { createRequire } = await import('node:module');
       const required = createRequire(import.meta.url)('ringstore/lab');
       console.log('exploreCrashStates' in root, 'WriteTrace' in root, typeof lab.exploreCrashStates, typeof lab.LabStore, required.LabStore === lab.LabStore);`,
      'module',
    );
    assert.equal(out, 'false false function function true');
  });
});
