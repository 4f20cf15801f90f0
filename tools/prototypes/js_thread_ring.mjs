// Runs the js_thread_ring prototype (js_thread_ring.c) against ringstore's
// actor at queue depth 1, in alternating rounds, on one O_DIRECT file:
// 4 KiB random write + fdatasync (a linked pair), write with RWF_DSYNC, and
// read. Prints each round's p50 and mean, then the medians of the rounds.
//
//   npm run build && node tools/prototypes/js_thread_ring.mjs [FILE] [OPS] [ROUNDS]
//
// FILE (default bench-data/io.bin, as bench:io makes it) must exist, be at
// least 1 GiB and be written all over: its blocks are overwritten. The
// prototype is compiled with gcc against Node's headers into bench-data/.
// Not part of the package or of the tests: a measurement for the team.
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repository = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const filePath = process.argv[2] ?? join(repository, 'bench-data', 'io.bin');
const operationCount = Number(process.argv[3] ?? 5000);
const roundCount = Number(process.argv[4] ?? 3);
const BLOCK_SIZE_BYTES = 4096;
const FILE_SIZE_BYTES_MIN = 1 << 30;
const WARMUP_OPERATION_COUNT = 500;

if (!existsSync(filePath) || statSync(filePath).size < FILE_SIZE_BYTES_MIN) {
  throw new Error(`${filePath} must exist and hold at least 1 GiB (npm run bench:io makes bench-data/io.bin)`);
}
const blockCount = Math.floor(statSync(filePath).size / BLOCK_SIZE_BYTES);
const headers = [join(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node'].find((path) => existsSync(join(path, 'node_api.h')));
if (headers === undefined) throw new Error("Node's headers (node_api.h) were not found next to node or in /usr/include/node");
const addonPath = join(repository, 'bench-data', 'js_thread_ring.node');
execFileSync('gcc', ['-O2', '-Wall', '-shared', '-fPIC', `-I${headers}`, '-o', addonPath, join(repository, 'tools', 'prototypes', 'js_thread_ring.c')], { stdio: 'inherit' });
const prototype = createRequire(import.meta.url)(addonPath);
const { IoUringActor, allocAligned } = await import(join(repository, 'dist', 'index.js'));

const MODES = [
  { name: '4 KiB write + fdatasync (linked)', prototypeMode: 0, actorCall: 'writeAndSync' },
  { name: '4 KiB write with RWF_DSYNC', prototypeMode: 1, actorCall: 'writeDsync' },
  { name: '4 KiB read', prototypeMode: 2, actorCall: 'read' },
];

prototype.open(filePath);
const ring = IoUringActor.start();
const file = await ring.open(filePath, { direct: true });
const buffer = allocAligned(BLOCK_SIZE_BYTES);
buffer.fill(0x5a);
let seed = 0x2545f491;
function nextOffset() {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return ((seed >>> 0) % blockCount) * BLOCK_SIZE_BYTES;
}
function viaPrototype(mode, offset) {
  return new Promise((resolve, reject) => {
    prototype.submit(buffer, offset, mode, (result) => {
      if (result === BLOCK_SIZE_BYTES) resolve();
      else reject(new Error(result < 0 ? `errno ${-result}` : `short transfer: ${result} bytes`));
    });
  });
}
async function latenciesUs(operation) {
  for (let i = 0; i < WARMUP_OPERATION_COUNT; i++) await operation(nextOffset());
  const latencies = new Float64Array(operationCount);
  for (let i = 0; i < operationCount; i++) {
    const offset = nextOffset();
    const startedNs = process.hrtime.bigint();
    await operation(offset);
    latencies[i] = Number(process.hrtime.bigint() - startedNs) / 1000;
  }
  latencies.sort();
  let sum = 0;
  for (const latency of latencies) sum += latency;
  return { p50: latencies[latencies.length >> 1], mean: sum / latencies.length };
}
const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1];

console.log(`${filePath}, ${operationCount} operations a round after ${WARMUP_OPERATION_COUNT} of warm-up, ${roundCount} rounds; the actor with default options`);
for (const mode of MODES) {
  const rows = { prototype: [], actor: [] };
  for (let round = 0; round < roundCount; round++) {
    // Alternate which goes first, so a drift of the host favours neither.
    const order = round % 2 === 0 ? ['prototype', 'actor'] : ['actor', 'prototype'];
    for (const contender of order) {
      const result = contender === 'prototype'
        ? await latenciesUs((offset) => viaPrototype(mode.prototypeMode, offset))
        : await latenciesUs((offset) => file[mode.actorCall](buffer, offset));
      rows[contender].push(result);
      console.log(`  ${mode.name}, round ${round + 1}, ${contender}: p50 ${result.p50.toFixed(1)} µs, mean ${result.mean.toFixed(1)} µs`);
    }
  }
  const summary = (contender) => `p50 ${median(rows[contender].map((r) => r.p50)).toFixed(1)} µs, mean ${median(rows[contender].map((r) => r.mean)).toFixed(1)} µs`;
  console.log(`${mode.name}: JS-thread ring ${summary('prototype')}; actor ${summary('actor')}`);
}
await file.close();
await ring.close();
// The prototype's ring and file stay open until the process exits.
process.exit(0);
