// Reproducers (tools/lab/reproducer.ts): a saved crash state replays as the
// same state with the same oracle — structured values (Maps, typed arrays,
// deletes) included — and a reproducer of another layout version is refused.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { exploreCorruption, isDamageReproducer, replayDamageReproducer } from '../../tools/lab/corruption_explorer.js';
import type { CrashState } from '../../tools/lab/crash_plan.js';
import { FAULT_FORMAT_VERSION, FAULT_STATE_FILE, isFaultReproducer, replayFaultReproducer } from '../../tools/lab/fault_explorer.js';
import { crashPoints, SectorFate } from '../../tools/lab/crash_states.js';
import { replayReproducer, REPRODUCER_STATE_FILE, saveReproducer } from '../../tools/lab/reproducer.js';
import { loadWorkloadModule, runWorkload, type TracedWorkload } from '../../tools/lab/workload.js';
import type { TraceOperation } from '../../tools/lab/write_trace.js';

const MODULE = new URL('./fixtures/lab_workload.js', import.meta.url).pathname;

describe('reproducers', function () {
  this.timeout(60_000);
  let dir: string;
  let workload: TracedWorkload;

  before(async () => {
    dir = mkdtempSync(`${tmpdir()}/ringstore-reproducer-`);
    const loaded = await loadWorkloadModule(MODULE);
    workload = await runWorkload(join(dir, 'work'), loaded.workload, loaded.storeOptions);
  });

  after(() => {
    workload?.trace.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('replays a saved state of a workload with Map and Buffer values and deletes as passing, with the problem it recorded', async () => {
    assert.ok(workload.operations.some((operation) => operation.writes.some(([, value]) => value instanceof Map || (value as { tags?: unknown })?.tags instanceof Map)));
    const points = crashPoints(workload.trace);
    const tearable = (operation: TraceOperation): boolean => operation.kind !== 'trim' && operation.length >= 1024;
    const point = [...points].reverse().find((candidate) => candidate.pending.some(tearable))!;
    const torn = point.pending.find(tearable)!;
    const fates = Array.from({ length: Math.ceil(torn.length / 512) }, (_, sector) => (sector === 0 ? SectorFate.New : sector === 1 ? SectorFate.Garbage : SectorFate.Old));
    const state: CrashState = { strategy: 'random', point, choice: new Map([[torn, fates]]), key: 'test' };
    const saved = saveReproducer(join(dir, 'repro'), workload, state, 'planted for the test', 42);
    const replayed = await replayReproducer(saved);
    assert.equal(replayed.recorded, 'planted for the test');
    assert.equal(replayed.problem, undefined, 'a valid crash state of a correct store passes on replay');
    assert.match(replayed.description, new RegExp(`crash after event ${point.eventCount},.*#${torn.id} .* sectors \\[12`));
  });

  it('saves a reproducer of every damaged image the corruption explorer fails, which replays with the same problem', async () => {
    // A planted lie in the oracle: the first put says it wrote something
    // else, so the images taken right after it (the first the explorer
    // damages) read "wrong".
    const index = workload.operations.findIndex((operation) => operation.writes.some(([, value]) => value !== undefined) && operation.refused !== true);
    const operations = workload.operations.map((operation, i) =>
      i === index ? { ...operation, writes: operation.writes.map(([key]) => [key, 'never written'] as [typeof key, unknown]) } : operation,
    );
    const lying: TracedWorkload = { ...workload, operations };
    const report = await exploreCorruption(lying, { trials: 4, seed: 5, reproducerDirectory: join(dir, 'damage') });
    assert.ok(report.failures.length > 0, 'the planted lie was not caught');
    assert.equal(report.reproducers.length, report.failures.length);
    const saved = report.reproducers[0]!;
    assert.ok(isDamageReproducer(saved));
    const replayed = await replayDamageReproducer(saved);
    assert.equal(replayed.recorded, report.failures[0]);
    assert.equal(replayed.problem, report.failures[0]);
  });

  it('replays a saved IO fault plan with its seed (passing, on a correct store)', async () => {
    const saved = join(dir, 'fault');
    mkdirSync(saved, { recursive: true });
    const plan = { kind: 'writeAndSync', nth: 2, fault: 'EIO', persistent: false, deferred: true };
    writeFileSync(join(saved, FAULT_STATE_FILE), JSON.stringify({ version: FAULT_FORMAT_VERSION, plan, seed: 9, problem: 'planted for the test' }));
    assert.ok(isFaultReproducer(saved));
    const replayed = await replayFaultReproducer(saved);
    assert.equal(replayed.recorded, 'planted for the test');
    assert.equal(replayed.problem, undefined);
    assert.equal(replayed.description, `${JSON.stringify(plan)} seed 9`);
  });

  it('refuses a reproducer of another version', async () => {
    const state: CrashState = { strategy: 'boundary', point: crashPoints(workload.trace).at(-1)!, choice: new Map(), key: 'test' };
    const saved = saveReproducer(join(dir, 'repro'), workload, state, 'planted', 1);
    const path = join(saved, REPRODUCER_STATE_FILE);
    writeFileSync(path, readFileSync(path, 'utf8').replace('"version": 1', '"version": 0'));
    await assert.rejects(replayReproducer(saved), /reproducer of version 0; this build replays version 1/);
  });
});
